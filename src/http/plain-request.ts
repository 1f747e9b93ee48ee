// Reading a plain `POST /like` or `GET /likes` straight from a connection's bytes.
//
// node:http costs about 25–30 µs of CPU a request on Node 24 here, against about 30 µs for all the
// rest of an answered POST (bench, "A lean public port"). This reader accepts only what it fully
// understands: HTTP/1.1, a request line of exactly one of the two routes, well-formed headers,
// a Host, a body by Content-Length alone (JSON, within the limit) for POST and none for GET, and
// no Expect, Upgrade, Transfer-Encoding or Content-Encoding. Anything else is `other`: the
// connection goes to node:http from that request on, which answers it as it always did.
import { BODY_LIMIT_BYTES } from "./validation.js";

export type PlainRoute = "/like" | "/likes";

export interface PlainRequest {
  readonly method: "POST" | "GET";
  readonly route: PlainRoute;
  /** What follows the `?` of the target, undefined without one. */
  readonly query: string | undefined;
  /**
   * Every header by its lower-cased name (the trace propagator reads its own, whichever
   * OTEL_PROPAGATORS chose); a request with a header twice is node:http's.
   */
  readonly headers: Readonly<Record<string, string>>;
  /** The body of a POST; empty for a GET. */
  readonly body: Buffer;
  /** The client asked to close the connection after the answer. */
  readonly close: boolean;
}

export type Parsed =
  | { readonly kind: "plain"; readonly request: PlainRequest; readonly size: number }
  /** Not all of the request has arrived; once its head has, `size` is the whole request's. */
  | { readonly kind: "incomplete"; readonly size: number }
  | { readonly kind: "other" };

/** A head longer than this is node:http's to refuse (431), as its own limit is 16 KiB. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Where a request's head ends. */
export const HEAD_END = Buffer.from("\r\n\r\n");
const INCOMPLETE: Parsed = { kind: "incomplete", size: 0 };
const OTHER: Parsed = { kind: "other" };
/** The Content-Types of a plain like's body (lower-cased), on both plain paths. */
export const PLAIN_JSON: ReadonlySet<string> = new Set([
  "application/json",
  "application/json; charset=utf-8",
  "application/json;charset=utf-8",
]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * A request target of printable ASCII, as node:http's strict parser allows, but `#`: a fragment
 * (never sent by a browser, but node:http lets it through) is cut by express, so such a target
 * goes to the express app rather than this path keeping it in the query.
 */
const TARGET = /^[\x21\x22\x24-\x7e]+$/;
const LENGTH = /^\d{1,7}$/;
const EMPTY = Buffer.alloc(0);

/**
 * Reads the request at the start of `bytes`: plain (with its size in bytes), incomplete, or
 * other. The end of its head is looked for from `from` on (bytes before it were looked at).
 */
export function parsePlainRequest(bytes: Buffer, from = 0): Parsed {
  const end = bytes.indexOf(HEAD_END, from);
  if (end === -1)
    return bytes.length > MAX_HEAD_BYTES || !mayBePlain(bytes, from) ? OTHER : INCOMPLETE;
  if (end > MAX_HEAD_BYTES) return OTHER;
  const head = bytes.toString("latin1", 0, end);
  const lineEnd = head.indexOf("\r\n");
  const start = requestLine(lineEnd === -1 ? head : head.slice(0, lineEnd));
  if (!start) return OTHER;
  const { method, route, target, mark } = start;

  // No prototype: a header named `constructor` or `__proto__` is a header like any other.
  const headers = Object.create(null) as Record<string, string>;
  let length: string | undefined;
  let type: string | undefined;
  let host = false;
  let close = false;
  let at = lineEnd;
  while (at !== -1) {
    const next = head.indexOf("\r\n", at + 2);
    const field = head.slice(at + 2, next === -1 ? head.length : next);
    at = next;
    const header = headerField(field);
    if (!header) return OTHER;
    const { value } = header;
    const lower = header.name.toLowerCase();
    if (headers[lower] !== undefined) return OTHER;
    headers[lower] = value;
    switch (lower) {
      case "content-length":
        if (!LENGTH.test(value)) return OTHER;
        length = value;
        break;
      case "content-type":
        type = value;
        break;
      case "host":
        host = true;
        break;
      case "connection": {
        const option = value.toLowerCase();
        if (option === "close") close = true;
        else if (option !== "keep-alive") return OTHER;
        break;
      }
      case "transfer-encoding":
      case "content-encoding":
      case "expect":
      case "upgrade":
        return OTHER;
    }
  }
  if (!host) return OTHER;

  const bodyAt = end + HEAD_END.length;
  if (method === "GET") {
    if (length !== undefined && Number(length) !== 0) return OTHER;
    const request = { method, route, query: queryOf(target, mark), headers, body: EMPTY, close };
    return { kind: "plain", request, size: bodyAt };
  }
  const size = length === undefined ? 0 : Number(length);
  if (size === 0 || size > BODY_LIMIT_BYTES) return OTHER;
  if (type === undefined || !PLAIN_JSON.has(type.toLowerCase())) return OTHER;
  if (bytes.length < bodyAt + size) return { kind: "incomplete", size: bodyAt + size };
  const body = bytes.subarray(bodyAt, bodyAt + size);
  const request = { method, route, query: queryOf(target, mark), headers, body, close };
  return { kind: "plain", request, size: bodyAt + size };
}

/** A plain request's first line: its method, route and target (and where its `?` is, or -1). */
function requestLine(
  line: string,
): { method: "POST" | "GET"; route: PlainRoute; target: string; mark: number } | undefined {
  let method: "POST" | "GET";
  let route: PlainRoute;
  if (line.startsWith("POST /like")) {
    method = "POST";
    route = "/like";
  } else if (line.startsWith("GET /likes")) {
    method = "GET";
    route = "/likes";
  } else return undefined;
  if (!line.endsWith(" HTTP/1.1")) return undefined;
  const target = line.slice(method.length + 1, line.length - 9);
  const mark = target.indexOf("?");
  if ((mark === -1 ? target : target.slice(0, mark)) !== route || !TARGET.test(target))
    return undefined;
  return { method, route, target, mark };
}

/** A header line as node:http reads it (a token, a colon, a value without controls), or undefined. */
function headerField(field: string): { name: string; value: string } | undefined {
  const colon = field.indexOf(":");
  if (colon <= 0) return undefined;
  const name = field.slice(0, colon);
  const value = trimOws(field.slice(colon + 1));
  return TOKEN.test(name) && !hasControl(value) ? { name, value } : undefined;
}

const PLAIN_STARTS = [Buffer.from("POST /like", "latin1"), Buffer.from("GET /likes", "latin1")];
const CRLF = Buffer.from("\r\n");

/**
 * Whether bytes without the end of a head yet may still be a plain request's: they begin as one,
 * no line of them ends with a bare LF or CR, and each whole line reads as a plain request's.
 * Others (another route, TLS, LF line ends, a malformed line) go to node:http at once (which
 * refuses a malformed one with a 400), rather than waiting out the headers timeout for a
 * CRLFCRLF that never comes.
 */
function mayBePlain(bytes: Buffer, from: number): boolean {
  const begins = (start: Buffer) => {
    const n = Math.min(bytes.length, start.length);
    return bytes.compare(start, 0, n, 0, n) === 0;
  };
  if (!PLAIN_STARTS.some(begins)) return false;
  for (let at = bytes.indexOf(0x0a, from); at !== -1; at = bytes.indexOf(0x0a, at + 1))
    if (at === 0 || bytes[at - 1] !== 0x0d) return false;
  // A bare CR too (one not followed by LF, once the byte after it is here).
  for (let at = bytes.indexOf(0x0d, from); at !== -1; at = bytes.indexOf(0x0d, at + 1))
    if (at + 1 < bytes.length && bytes[at + 1] !== 0x0a) return false;
  // The lines that ended since the last look (one may have begun before it).
  let last = -1;
  for (let end = bytes.indexOf(CRLF, Math.max(0, from - 1)); end !== -1;) {
    const before = end === 0 ? -1 : bytes.lastIndexOf(CRLF, end - 1);
    const line = bytes.toString("latin1", before === -1 ? 0 : before + 2, end);
    // An empty line ends the head, before what was looked at (the caller never asks that).
    if (line === "") return true;
    if (before === -1 ? !requestLine(line) : !headerField(line)) return false;
    last = end;
    end = bytes.indexOf(CRLF, end + 2);
  }
  return headerLineMayEnd(bytes, last === -1 ? bytes.lastIndexOf(CRLF) : last, from);
}

/**
 * Whether the header line not yet ended after the CRLF at `crlf` may still be one node:http
 * reads: the new bytes of its name (from `from` on) token characters, those of its value no
 * controls. A CR last is the line's end coming (a bare one was refused above), or the head's.
 * Only the line's bytes not looked at before are read one by one.
 */
function headerLineMayEnd(bytes: Buffer, crlf: number, from: number): boolean {
  if (crlf === -1) return true;
  const start = crlf + 2;
  const end = bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  const colon = bytes.indexOf(0x3a, start);
  const nameEnd = colon === -1 || colon > end ? end : colon;
  if (colon === start) return false;
  const name = bytes.toString("latin1", Math.max(start, from), nameEnd);
  if (name !== "" && !TOKEN.test(name)) return false;
  return nameEnd === end || !hasControl(bytes.toString("latin1", Math.max(colon + 1, from), end));
}

/** How many bytes of empty lines (CRLF) come before a request: skipped, as node:http skips them. */
export function blankLines(bytes: Buffer): number {
  let at = 0;
  while (at + 1 < bytes.length && bytes[at] === 0x0d && bytes[at + 1] === 0x0a) at += 2;
  return at;
}

function queryOf(target: string, mark: number): string | undefined {
  return mark === -1 ? undefined : target.slice(mark + 1);
}

/** A header value without the optional whitespace (spaces and tabs) around it. */
function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/** Control characters other than HTAB: node:http refuses them in a header value. */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
