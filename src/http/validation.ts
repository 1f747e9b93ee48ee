// The rules of the public API's input (README, "HTTP API"): the query string, the like body, and
// each parameter, as one function apiece that returns the value or throws InvalidInputError.
import querystring from "node:querystring";
import { fieldProblem, type Like, type PostId, type UserId } from "../crdt/index.js";
import type { Consistency } from "../replication/replicator.js";
import { InvalidInputError, InvalidUtf8Error } from "./errors.js";

export type Query = Readonly<Record<string, unknown>>;

export const BODY_LIMIT_BYTES = 16 * 1024;
/** Node's querystring stops at 1000 pairs by default and drops the rest silently: we refuse. */
export const MAX_QUERY_PAIRS = 1000;
export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;
export const MAX_COUNTS = 100;

const NO_QUERY: Query = Object.freeze({});
// Set by decodeComponent during one synchronous parse: querystring swallows a decoder's throw.
let invalidUtf8 = false;
const PARSE_OPTIONS = { maxKeys: MAX_QUERY_PAIRS, decodeURIComponent: decodeComponent };

/**
 * The query string of both POST /like paths and every express route: at most 1000 pairs
 * (`&`-separated, empty ones counted), percent-escapes that decode to valid UTF-8.
 */
export function parseQuery(search: string | null | undefined): Query {
  if (!search) return NO_QUERY;
  let pairs = 1;
  for (let at = search.indexOf("&"); at !== -1; at = search.indexOf("&", at + 1))
    if (++pairs > MAX_QUERY_PAIRS)
      throw new InvalidInputError(
        "invalid_query",
        `the query has more than ${MAX_QUERY_PAIRS} parameters`,
      );
  if (!HAS_ESCAPES.test(search)) return splitPlain(search);
  invalidUtf8 = false;
  const query = querystring.parse(search, "&", "=", PARSE_OPTIONS);
  if (invalidUtf8) throw new InvalidUtf8Error("query");
  return query;
}

/** What querystring.parse would decode: a percent-escape or a `+` (a space). */
const HAS_ESCAPES = /[%+]/;

/**
 * querystring.parse of a query with nothing to decode, without its decoder calls (its
 * per-pair work with a custom decoder was 6% of a GET's CPU): pairs split at `&`, empty ones
 * skipped, key and value at the first `=`, a repeated key collecting an array, in an object
 * without a prototype. A property test holds it to querystring.parse.
 */
export function splitPlain(search: string): Query {
  const query = Object.create(null) as Record<string, string | string[]>;
  let start = 0;
  while (start <= search.length) {
    let end = search.indexOf("&", start);
    if (end === -1) end = search.length;
    if (end > start) {
      const eq = search.indexOf("=", start);
      const hasValue = eq !== -1 && eq < end;
      const key = search.slice(start, hasValue ? eq : end);
      const value = hasValue ? search.slice(eq + 1, end) : "";
      const held = query[key];
      if (held === undefined) query[key] = value;
      else if (typeof held === "string") query[key] = [held, value];
      else held.push(value);
    }
    start = end + 1;
  }
  return query;
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // A `%` without two hex digits stays as written (as querystring does); what still fails to
    // decode then is not UTF-8.
    try {
      return decodeURIComponent(text.replace(/%(?![0-9a-fA-F]{2})/g, "%25"));
    } catch {
      invalidUtf8 = true;
      return text;
    }
  }
}

export function parseLikeBody(body: unknown): Like {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new InvalidInputError(
      "invalid_body",
      'the body must be a JSON object {"post": …, "user": …}',
    );
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => key !== "post" && key !== "user");
  if (unknown.length > 0)
    throw new InvalidInputError(
      "invalid_body",
      `unknown field ${JSON.stringify(unknown[0])}; only post and user`,
    );
  return { post: field(fields.post, "post") as PostId, user: field(fields.user, "user") as UserId };
}

function field(value: unknown, name: string): string {
  if (value === undefined) throw new InvalidInputError("missing_field", `${name} is required`);
  const problem = fieldProblem(value);
  if (problem !== null) throw new InvalidInputError("invalid_field", `${name} ${problem}`);
  return value as string;
}

/** Rejects query parameters the route does not know, so that a typo is not silently ignored. */
export function onlyKnown(query: Query, known: readonly string[]): void {
  for (const key of Object.keys(query))
    if (!known.includes(key))
      throw new InvalidInputError(
        "invalid_query",
        `unknown query parameter ${JSON.stringify(key)}; ${known.length === 0 ? "this path takes none" : `expected ${known.join(", ")}`}`,
      );
}

/** A parameter given at most once, or undefined. */
export function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string")
    throw new InvalidInputError("invalid_query", `${name} must be given once`);
  return value;
}

export function queryField(query: Query, name: "post" | "user"): string | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  const problem = fieldProblem(value);
  if (problem !== null) throw new InvalidInputError("invalid_query", `${name} ${problem}`);
  return value;
}

export function requiredPost(query: Query): PostId {
  const post = queryField(query, "post");
  if (post === undefined)
    throw new InvalidInputError("invalid_query", "post is required: /likes?post=…");
  return post as PostId;
}

export function booleanParam(query: Query, name: string): boolean {
  const value = single(query, name);
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw new InvalidInputError("invalid_query", `${name} must be true or false`);
}

export function pageLimit(query: Query): number {
  const value = single(query, "limit");
  if (value === undefined) return DEFAULT_PAGE;
  const limit = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(limit >= 1 && limit <= MAX_PAGE))
    throw new InvalidInputError("invalid_query", `limit must be an integer from 1 to ${MAX_PAGE}`);
  return limit;
}

/** Cursors are the last user of the previous page, base64url-encoded: opaque to clients. */
export function encodeCursor(user: UserId): string {
  return Buffer.from(user, "utf8").toString("base64url");
}

export function decodeCursor(query: Query): UserId | undefined {
  const value = single(query, "cursor");
  if (value === undefined) return undefined;
  const user = /^[A-Za-z0-9_-]+$/.test(value)
    ? Buffer.from(value, "base64url").toString("utf8")
    : "";
  if (fieldProblem(user) !== null || encodeCursor(user as UserId) !== value)
    throw new InvalidInputError("invalid_query", "cursor is not one this service returned");
  return user as UserId;
}

export function consistencyParam(query: Query): Consistency {
  const value = single(query, "consistency") ?? "local";
  if (value !== "local" && value !== "quorum" && value !== "all")
    throw new InvalidInputError("invalid_query", "consistency must be local, quorum or all");
  return value;
}

/** The posts of /counts: 1 to 100, each valid, duplicates collapsed. */
export function postList(query: Query): PostId[] {
  const raw = query.post;
  const values = raw === undefined ? [] : Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (values.length === 0)
    throw new InvalidInputError("invalid_query", "post is required: /counts?post=A&post=B");
  if (values.length > MAX_COUNTS)
    throw new InvalidInputError("invalid_query", `at most ${MAX_COUNTS} posts per request`);
  const posts = values.map((value) => {
    const problem = fieldProblem(value);
    if (problem !== null) throw new InvalidInputError("invalid_query", `post ${problem}`);
    return value as PostId;
  });
  return [...new Set(posts)];
}
