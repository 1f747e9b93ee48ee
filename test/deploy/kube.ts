// Schema checks for rendered Kubernetes objects (kubernetes-models), for test/deploy and
// test/observability.

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export const describeObject = (obj: KubeObject): string =>
  `${obj.kind}/${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ""}${obj.metadata.name}`;

interface ModelClass {
  new (data: object): { validate(): void };
  prototype: { validate(this: object): void };
}

/** The kubernetes-models class of an object's apiVersion and kind, e.g. apps/v1 StatefulSet. */
export async function modelFor(obj: Pick<KubeObject, "apiVersion" | "kind">): Promise<ModelClass> {
  const specifier = `kubernetes-models/${obj.apiVersion}`;
  let group: Record<string, unknown>;
  try {
    group = (await import(specifier)) as Record<string, unknown>;
  } catch {
    throw new Error(`kubernetes-models has no API group ${obj.apiVersion} (for ${obj.kind})`);
  }
  const model = group[obj.kind];
  if (typeof model !== "function")
    throw new Error(`kubernetes-models has no ${obj.apiVersion} ${obj.kind}`);
  return model as ModelClass;
}

/** Schema validation as kubernetes-models does it: types, enums, required fields. */
export async function schemaErrors(obj: KubeObject): Promise<string | undefined> {
  const Model = await modelFor(obj);
  try {
    new Model(obj).validate();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Fields the schema does not know, e.g. `readinessProb`: kubernetes-models accepts them silently
 * (the API server would drop or reject them). Its compiled validators read every property the
 * schema defines (`data.readinessProbe === undefined`, `for (key in data)` for maps), so a
 * Proxy records which keys each object's schema knows; every other key is unknown.
 */
export async function unknownFields(obj: KubeObject): Promise<string[]> {
  const Model = await modelFor(obj);
  const known = new Map<object, Set<PropertyKey>>();
  const proxies = new WeakMap<object, object>();
  const watch = (target: object): object => {
    const existing = proxies.get(target);
    if (existing) return existing;
    const keys = new Set<PropertyKey>();
    known.set(target, keys);
    const proxy = new Proxy(target, {
      get(t, key, receiver) {
        keys.add(key);
        const value: unknown = Reflect.get(t, key, receiver);
        return value !== null && typeof value === "object" ? watch(value) : value;
      },
    });
    proxies.set(target, proxy);
    return proxy;
  };
  try {
    Model.prototype.validate.call(watch(obj));
  } catch {
    // Schema errors are schemaErrors()'s business; the reads happened all the same.
  }
  const unknown: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${path}[${i}]`));
      return;
    }
    const keys = known.get(node);
    if (keys === undefined) return;
    for (const [key, value] of Object.entries(node)) {
      if (keys.has(key)) walk(value, `${path}.${key}`);
      else unknown.push(`${path}.${key}`);
    }
  };
  walk(obj, "");
  return unknown;
}
