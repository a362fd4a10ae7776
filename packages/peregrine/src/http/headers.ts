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
/**
 * The last name found checked, compared first: an app sets the same name on every
 * response (V8 compares equal pointers at once), and a match spares the Map lookup.
 * It always holds a valid name: it starts as one, not as "" (which is not).
 */
let lastCheckedName = "content-type";
let lastCheckedLower = "content-type";

export type HeaderValue = string | readonly string[];

/**
 * Case-insensitive HTTP headers. Names are stored in lower case, which HTTP/2 requires
 * and HTTP/1.1 permits. Repeated headers keep every value; `get` joins them with ", "
 * (as fetch's Headers does), `getAll` returns them apart.
 */
export class HeaderDictionary implements Iterable<[string, string]> {
  private _map: Map<string, string | string[]> | undefined;
  /**
   * Until a second name is set, the one header of a dictionary that loads nothing lives
   * here instead of in a Map: most responses carry one (their content type), and its
   * Map was about a seventh of the bytes the JS thread allocated per request
   * (bench/README.md). Undefined when there is none, or once the Map exists.
   */
  private _onlyName: string | undefined;
  private _onlyValue: string | string[] | undefined;
  /** Whether `load` is overridden: then entries always go through the Map. */
  private readonly _lazy: boolean;
  private _readOnly = false;

  constructor(init?: Iterable<readonly [string, string]> | Record<string, HeaderValue>) {
    this._lazy = this.load !== HeaderDictionary.prototype.load;
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

  /** The Map, made (and given the inline header) on first need. */
  private _entries(): Map<string, string | string[]> {
    let map = this._map;
    if (map === undefined) {
      map = this.load();
      if (this._onlyName !== undefined) {
        map.set(this._onlyName, this._onlyValue as string | string[]);
        this._dropOnly();
      }
      this._map = map;
    }
    return map;
  }

  /** Whether the entries are the inline one (or none): no Map, and nothing to load. */
  private _isInline(): boolean {
    return this._map === undefined && !this._lazy;
  }

  /** The stored value of `key` (lower case). */
  private _stored(key: string): string | string[] | undefined {
    if (this._isInline()) return key === this._onlyName ? this._onlyValue : undefined;
    return this._entries().get(key);
  }

  /** Stores `value` under `key`, inline while it is the only name. */
  private _store(key: string, value: string | string[]): void {
    if (this._isInline() && (this._onlyName === undefined || this._onlyName === key)) {
      this._onlyName = key;
      this._onlyValue = value;
    } else this._entries().set(key, value);
  }

  get isReadOnly(): boolean {
    return this._readOnly;
  }

  /** Makes the headers immutable: the response has started. */
  lock(): void {
    this._readOnly = true;
  }

  get size(): number {
    if (this._isInline()) return this._onlyName === undefined ? 0 : 1;
    return this._entries().size;
  }

  get(name: string): string | undefined {
    const value = this._stored(lowerName(name));
    if (value === undefined || typeof value === "string") return value;
    return value.join(", ");
  }

  getAll(name: string): string[] {
    const value = this._stored(lowerName(name));
    if (value === undefined) return [];
    return typeof value === "string" ? [value] : [...value];
  }

  has(name: string): boolean {
    return this._stored(lowerName(name)) !== undefined;
  }

  set(name: string, value: HeaderValue | number): void {
    const key = this._checkName(name);
    if (typeof value === "number") value = String(value);
    if (typeof value === "string") {
      this._store(key, checkValue(key, value));
    } else {
      const values = value.map((v) => checkValue(key, v));
      if (values.length === 0) this._remove(key);
      else this._store(key, values.length === 1 ? (values[0] as string) : values);
    }
  }

  append(name: string, value: string | number): void {
    const key = this._checkName(name);
    const v = checkValue(key, typeof value === "number" ? String(value) : value);
    const existing = this._stored(key);
    if (existing === undefined) this._store(key, v);
    else if (typeof existing === "string") this._store(key, [existing, v]);
    else existing.push(v);
  }

  delete(name: string): boolean {
    this._checkWritable();
    return this._remove(lowerName(name));
  }

  private _remove(key: string): boolean {
    if (!this._isInline()) return this._entries().delete(key);
    if (key !== this._onlyName) return false;
    this._dropOnly();
    return true;
  }

  private _dropOnly(): void {
    this._onlyName = undefined;
    this._onlyValue = undefined;
  }

  clear(): void {
    this._checkWritable();
    if (this._isInline()) this._dropOnly();
    else this._entries().clear();
  }

  *entries(): IterableIterator<[string, string]> {
    for (const [name, value] of this._entries()) {
      if (typeof value === "string") yield [name, value];
      else for (const v of value) yield [name, v];
    }
  }

  keys(): IterableIterator<string> {
    return this._entries().keys();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** A plain object, for logging and tests; repeated values become arrays. */
  toJSON(): Record<string, string | string[]> {
    return Object.fromEntries(this._entries());
  }

  /** `name\nvalue\n...`, the form the native core takes. Values were checked on entry. */
  pack(): string {
    let out = "";
    this.forEachStored((value, name) => {
      if (typeof value === "string") out += out === "" ? `${name}\n${value}` : `\n${name}\n${value}`;
      else for (const v of value) out += out === "" ? `${name}\n${v}` : `\n${name}\n${v}`;
    });
    return out;
  }

  /**
   * Calls `visit` with each header as stored (lower-case name; a string, or an array for
   * repeated values), for writers that encode them without pack(); headers a lazy
   * subclass has not loaded are not visited. Values were checked on entry.
   * @internal
   */
  forEachStored(visit: (value: string | readonly string[], name: string) => void): void {
    const map = this._map;
    if (map !== undefined) map.forEach(visit);
    else if (this._onlyName !== undefined) visit(this._onlyValue as string | string[], this._onlyName);
  }

  private _checkName(name: string): string {
    this._checkWritable();
    if (name === lastCheckedName) return lastCheckedLower;
    const known = checkedNames.get(name);
    if (known !== undefined) {
      lastCheckedName = name;
      lastCheckedLower = known;
      return known;
    }
    if (!TOKEN.test(name)) {
      throw new PeregrineError(ErrorCodes.INVALID_HEADER, `"${name}" is not a valid header name`);
    }
    const lower = name.toLowerCase();
    if (checkedNames.size < CHECKED_NAMES_MAX) checkedNames.set(name, lower);
    return lower;
  }

  private _checkWritable(): void {
    if (this._readOnly) {
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
