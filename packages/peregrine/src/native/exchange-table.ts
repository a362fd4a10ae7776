/** What the table keeps: anything with the id the core gave it. */
export interface Identified {
  readonly id: number;
}

/** Slots in the direct-mapped part; a power of two. */
const SLOTS = 4096;

/**
 * The exchanges in flight, by the id the core gave each. The core numbers exchanges
 * in sequence and most live for a moment, so an exchange goes into the slot its id
 * picks, and only one whose slot is taken (by a long-lived exchange 4,096 ids older)
 * goes into a Map. A Map alone grew and shrank its hash table with every batch: a set
 * and a delete cost about 70 ns, against a few here (bench/README.md).
 */
export class ExchangeTable<T extends Identified> {
  readonly #slots: (T | undefined)[] = new Array(SLOTS).fill(undefined);
  readonly #overflow = new Map<number, T>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  set(value: T): void {
    const slot = value.id & (SLOTS - 1);
    const current = this.#slots[slot];
    if (current === undefined) this.#slots[slot] = value;
    else if (current.id === value.id) {
      this.#slots[slot] = value;
      return;
    } else {
      const had = this.#overflow.has(value.id);
      this.#overflow.set(value.id, value);
      if (had) return;
    }
    this.#size++;
  }

  get(id: number): T | undefined {
    const value = this.#slots[id & (SLOTS - 1)];
    if (value !== undefined && value.id === id) return value;
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id);
  }

  delete(id: number): boolean {
    const slot = id & (SLOTS - 1);
    const value = this.#slots[slot];
    if (value !== undefined && value.id === id) this.#slots[slot] = undefined;
    else if (this.#overflow.size === 0 || !this.#overflow.delete(id)) return false;
    this.#size--;
    return true;
  }

  /** Takes every exchange out, and returns them. */
  drain(): T[] {
    const all: T[] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      const value = this.#slots[slot];
      if (value !== undefined) {
        all.push(value);
        this.#slots[slot] = undefined;
      }
    }
    for (const value of this.#overflow.values()) all.push(value);
    this.#overflow.clear();
    this.#size = 0;
    return all;
  }
}
