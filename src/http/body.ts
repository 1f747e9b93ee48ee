// The body reader of requests that Node's HTTP server parses (a lean connection reads its own
// bytes, lean-connection.ts): one size limit, one answer to each way a body can be wrong, and one
// decoder of JSON (strict, as body-parser's was; invalid UTF-8 refused, never turned into U+FFFD).
import { isUtf8 } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable, Transform } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import {
  InvalidInputError,
  InvalidUtf8Error,
  PayloadTooLargeError,
  RequestAbortedError,
  UnsupportedMediaTypeError,
} from "./errors.js";

const DECOMPRESSORS: Readonly<Record<string, () => Transform>> = {
  gzip: createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** Answers of requests whose client waits for 100 Continue before it sends the body. */
const continues = new WeakMap<IncomingMessage, ServerResponse>();

/**
 * The client of `req` sends the body after a 100 Continue, which readBody sends when it takes
 * the body. An answer without it (refused before the body was wanted) closes the connection:
 * node:http does that itself, since the client may send the body or not, and what comes next on
 * the connection could not be told apart from it.
 */
export function awaitContinue(req: IncomingMessage, res: ServerResponse): void {
  continues.set(req, res);
}

function sendContinue(req: IncomingMessage): void {
  const res = continues.get(req);
  if (res === undefined) return;
  continues.delete(req);
  res.writeContinue();
}

/** Whether a request announces a body (a length above zero, or chunks). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/**
 * The whole body of a request or a reply, at most `limit` bytes (counted after decompression).
 * A Content-Encoding is decompressed when `inflate`, refused with 415 otherwise; a declared
 * length over the limit is refused with 413 before a byte is read.
 */
export function readBody(
  message: IncomingMessage,
  limit: number,
  inflate = false,
): Promise<Buffer> {
  const encoding = message.headers["content-encoding"];
  if (encoding === undefined || encoding.toLowerCase() === "identity") {
    const declared = message.headers["content-length"];
    const length = declared === undefined ? -1 : Number(declared);
    if (length > limit) return Promise.reject(new PayloadTooLargeError(limit));
    sendContinue(message);
    return collect(message, message, limit, length);
  }
  const decompress = inflate ? DECOMPRESSORS[encoding.toLowerCase()] : undefined;
  if (decompress === undefined)
    return Promise.reject(
      new UnsupportedMediaTypeError(`Content-Encoding ${encoding} is not accepted here`),
    );
  sendContinue(message);
  const stream = decompress();
  message.pipe(stream);
  return collect(message, stream, limit, -1);
}

function collect(
  message: IncomingMessage,
  source: Readable,
  limit: number,
  length: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    source.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size - chunk.length <= limit) {
        // Not a byte more is kept; the answer closes the connection (respond.ts).
        source.pause();
        reject(new PayloadTooLargeError(limit));
      }
    });
    source.on("end", () => {
      if (length !== -1 && size !== length)
        reject(new InvalidInputError("invalid_body", "the body does not match its Content-Length"));
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    source.on("error", () =>
      reject(
        source === message
          ? new RequestAbortedError()
          : new InvalidInputError("invalid_body", "the body does not decompress"),
      ),
    );
    if (source !== message)
      message.on("error", () => {
        source.destroy();
        reject(new RequestAbortedError());
      });
  });
}

/** Whether a JSON Content-Type's charset (if any) is UTF-8, the only one JSON may use here. */
export function isUtf8Charset(contentType: string | undefined): boolean {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType ?? "")?.[1];
  return charset === undefined || charset.toLowerCase() === "utf-8";
}

/** A JSON body as body-parser's `json({ strict: true })` read it: UTF-8, a leading BOM dropped,
 * an object or an array; invalid UTF-8 is refused. */
export function decodeJson(bytes: Buffer): unknown {
  if (!isUtf8(bytes)) throw new InvalidUtf8Error("body");
  const text = bytes.toString("utf8");
  let at = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let first = text.charCodeAt(at);
  // JSON's whitespace: space, tab, line feed, carriage return.
  while (first === 0x20 || first === 0x09 || first === 0x0a || first === 0x0d)
    first = text.charCodeAt(++at);
  if (first === 0x7b || first === 0x5b) {
    let value: unknown;
    try {
      value = JSON.parse(at === 0 ? text : text.slice(at));
    } catch {
      throw new InvalidInputError("invalid_json", "the body is not valid JSON");
    }
    // JSON.parse keeps the last of a key given twice: which one the client meant is a guess.
    const twice = keyTwice(text, at);
    if (twice !== undefined)
      throw new InvalidInputError("invalid_body", `the body names ${JSON.stringify(twice)} twice`);
    return value;
  }
  throw new InvalidInputError("invalid_json", "the body is not valid JSON");
}

/** The first key that an object of valid JSON `text` (from `at`) names twice, if one does. */
export function keyTwice(text: string, at = 0): string | undefined {
  // Per open container: the keys of an object so far, undefined for an array.
  const open: (Set<string> | undefined)[] = [];
  // Whether the next string is a key: after `{`, and after `,` in an object.
  let key = false;
  for (let i = at; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = i + 1;
      let escaped = false;
      for (let d = text.charCodeAt(end); d !== 0x22; d = text.charCodeAt(end)) {
        if (d === 0x5c) {
          escaped = true;
          end++;
        }
        end++;
      }
      if (key) {
        const name = escaped
          ? (JSON.parse(text.slice(i, end + 1)) as string)
          : text.slice(i + 1, end);
        const keys = open[open.length - 1];
        if (keys?.has(name)) return name;
        keys?.add(name);
        key = false;
      }
      i = end;
    } else if (c === 0x7b) {
      open.push(new Set());
      key = true;
    } else if (c === 0x5b) open.push(undefined);
    else if (c === 0x7d || c === 0x5d) open.pop();
    else if (c === 0x2c) key = open[open.length - 1] !== undefined;
  }
  return undefined;
}
