/**
 * A grow-only set: elements are only ever added, and two replicas merge by union, so any order
 * and any number of merges end in the same set.
 */
export class GSet<T> {
  private readonly elements = new Map<string, T>();

  constructor(
    private readonly keyOf: (element: T) => string,
    elements: Iterable<T> = [],
  ) {
    for (const element of elements) this.add(element);
  }

  /** Adds an element; false when an equal one was already there. */
  add(element: T): boolean {
    const key = this.keyOf(element);
    if (this.elements.has(key)) return false;
    this.elements.set(key, element);
    return true;
  }

  has(element: T): boolean {
    return this.elements.has(this.keyOf(element));
  }

  get size(): number {
    return this.elements.size;
  }

  values(): IterableIterator<T> {
    return this.elements.values();
  }

  /** The union of both sets, as a new set; neither input changes. */
  merge(other: GSet<T>): GSet<T> {
    const union = new GSet(this.keyOf, this.values());
    for (const element of other.values()) union.add(element);
    return union;
  }

  equals(other: GSet<T>): boolean {
    if (this.size !== other.size) return false;
    for (const key of this.elements.keys()) if (!other.elements.has(key)) return false;
    return true;
  }
}
