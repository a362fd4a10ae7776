import { ErrorCodes, PeregrineError } from "../errors.js";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// CR, LF and NUL would let a value inject headers; other controls are refused too.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const INVALID_VALUE = /[\0-\x08\x0a-\x1f\x7f]/;
/** Values up to this long are checked by a loop: a regex call costs more than the scan. */
const VALUE_LOOP_MAX = 64;

/**
 * Header names already checked, each with its lower-case form. Apps set the same few
 * names on every response, and the check and toLowerCase were a measurable share of
 * the JS thread's work per request (bench/README.md). Bounded: names past the limit
 * are checked each time.
 */
const checkedNames = new Map<string, string>();
const CHECKED_NAMES_MAX = 512;

export type HeaderValue = string | readonly string[];

/**
 * Case-insensitive HTTP headers. Names are stored in lower case, which HTTP/2 requires
 * and HTTP/1.1 permits. Repeated headers keep every value; `get` joins them with ", "
 * (as fetch's Headers does), `getAll` returns them apart.
 */
export class HeaderDictionary implements Iterable<[string, string]> {
  #map: Map<string, string | string[]> | undefined;
  #readOnly = false;

  constructor(init?: Iterable<readonly [string, string]> | Record<string, HeaderValue>) {
    if (init === undefined) return;
    const entries = Symbol.iterator in init ? init : Object.entries(init as Record<string, HeaderValue>);
    for (const [name, value] of entries as Iterable<readonly [string, HeaderValue]>) {
      if (typeof value === "string") this.append(name, value);
      else for (const v of value) this.append(name, v);
    }
  }

  /** Subclasses that decode headers lazily override this to fill the map on first use. */
  protected load(): Map<string, string | string[]> {
    return new Map();
  }

  #entries(): Map<string, string | string[]> {
    let map = this.#map;
    if (map === undefined) {
      map = this.load();
      this.#map = map;
    }
    return map;
  }

  get isReadOnly(): boolean {
    return this.#readOnly;
  }

  /** Makes the headers immutable: the response has started. */
  lock(): void {
    this.#readOnly = true;
  }

  get size(): number {
    return this.#entries().size;
  }

  get(name: string): string | undefined {
    const value = this.#entries().get(lowerName(name));
    if (value === undefined || typeof value === "string") return value;
    return value.join(", ");
  }

  getAll(name: string): string[] {
    const value = this.#entries().get(lowerName(name));
    if (value === undefined) return [];
    return typeof value === "string" ? [value] : [...value];
  }

  has(name: string): boolean {
    return this.#entries().has(lowerName(name));
  }

  set(name: string, value: HeaderValue | number): void {
    const key = this.#checkName(name);
    if (typeof value === "number") value = String(value);
    if (typeof value === "string") {
      this.#entries().set(key, checkValue(key, value));
    } else {
      const values = value.map((v) => checkValue(key, v));
      if (values.length === 0) this.#entries().delete(key);
      else this.#entries().set(key, values.length === 1 ? (values[0] as string) : values);
    }
  }

  append(name: string, value: string | number): void {
    const key = this.#checkName(name);
    const v = checkValue(key, typeof value === "number" ? String(value) : value);
    const map = this.#entries();
    const existing = map.get(key);
    if (existing === undefined) map.set(key, v);
    else if (typeof existing === "string") map.set(key, [existing, v]);
    else existing.push(v);
  }

  delete(name: string): boolean {
    this.#checkWritable();
    return this.#entries().delete(lowerName(name));
  }

  clear(): void {
    this.#checkWritable();
    this.#entries().clear();
  }

  *entries(): IterableIterator<[string, string]> {
    for (const [name, value] of this.#entries()) {
      if (typeof value === "string") yield [name, value];
      else for (const v of value) yield [name, v];
    }
  }

  keys(): IterableIterator<string> {
    return this.#entries().keys();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** A plain object, for logging and tests; repeated values become arrays. */
  toJSON(): Record<string, string | string[]> {
    return Object.fromEntries(this.#entries());
  }

  /** `name\nvalue\n...`, the form the native core takes. Values were checked on entry. */
  pack(): string {
    const map = this.#map;
    if (map === undefined || map.size === 0) return "";
    let out = "";
    for (const [name, value] of map) {
      if (typeof value === "string") out += out === "" ? `${name}\n${value}` : `\n${name}\n${value}`;
      else for (const v of value) out += out === "" ? `${name}\n${v}` : `\n${name}\n${v}`;
    }
    return out;
  }

  /**
   * The headers as stored (lower-case names; a string, or an array for repeated
   * values), for writers that encode them without pack(); undefined when none were set.
   * Values were checked on entry.
   * @internal
   */
  storedEntries(): ReadonlyMap<string, string | readonly string[]> | undefined {
    const map = this.#map;
    return map === undefined || map.size === 0 ? undefined : map;
  }

  #checkName(name: string): string {
    this.#checkWritable();
    const known = checkedNames.get(name);
    if (known !== undefined) return known;
    if (!TOKEN.test(name)) {
      throw new PeregrineError(ErrorCodes.INVALID_HEADER, `"${name}" is not a valid header name`);
    }
    const lower = name.toLowerCase();
    if (checkedNames.size < CHECKED_NAMES_MAX) checkedNames.set(name, lower);
    return lower;
  }

  #checkWritable(): void {
    if (this.#readOnly) {
      throw new PeregrineError(
        ErrorCodes.RESPONSE_STARTED,
        "headers cannot change after the response has started; set them before the first write, or in onStarting",
      );
    }
  }
}

/** The stored form of a name, from the cache when it was checked before. */
function lowerName(name: string): string {
  return checkedNames.get(name) ?? name.toLowerCase();
}

function hasInvalidCharacter(value: string): boolean {
  const length = value.length;
  if (length > VALUE_LOOP_MAX) return INVALID_VALUE.test(value);
  for (let i = 0; i < length; i++) {
    const unit = value.charCodeAt(i);
    if ((unit < 0x20 && unit !== 0x09) || unit === 0x7f) return true;
  }
  return false;
}

/** The last value found valid: apps set the same constant (a content type) on every response. */
let lastValidValue = "";

function checkValue(name: string, value: string): string {
  if (value === lastValidValue) return value;
  if (hasInvalidCharacter(value)) {
    throw new PeregrineError(
      ErrorCodes.INVALID_HEADER,
      `the value of header "${name}" contains a control character (CR, LF and NUL are never allowed)`,
    );
  }
  lastValidValue = value;
  return value;
}
