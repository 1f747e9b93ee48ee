// Branded ids: a node name, an origin id and a post id are all strings on the wire, and
// mixing them up is a bug the compiler should catch.
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type NodeName = Brand<string, "NodeName">;
/** `${nodeName}~${incarnation}`: a node's identity for one life of its data directory. */
export type OriginId = Brand<string, "OriginId">;
export type PostId = Brand<string, "PostId">;
export type UserId = Brand<string, "UserId">;

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const INCARNATION = /^[a-z0-9]{1,32}$/;

export function isNodeName(value: string): value is NodeName {
  return NODE_NAME.test(value);
}

export function originId(name: NodeName, incarnation: string): OriginId {
  if (!INCARNATION.test(incarnation)) throw new RangeError(`bad incarnation ${incarnation}`);
  return `${name}~${incarnation}` as OriginId;
}

export function isOriginId(value: unknown): value is OriginId {
  if (typeof value !== "string") return false;
  const cut = value.lastIndexOf("~");
  return cut > 0 && isNodeName(value.slice(0, cut)) && INCARNATION.test(value.slice(cut + 1));
}

/** The node name part of an origin id: what metrics label by, so cardinality stays bounded. */
export function nodeNameOf(origin: OriginId): NodeName {
  return origin.slice(0, origin.lastIndexOf("~")) as NodeName;
}
