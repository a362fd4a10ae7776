/** A configuration value as the sources give it: JSON scalars, or strings from variables and arguments. */
export type ConfigValue = string | number | boolean | null;

/** Where a value came from, so an error can point at the file, variable or argument. */
export interface ConfigSource {
  kind: "file" | "environment" | "argument";
  /** The file's path, the variable's name, or the argument as written (`--urls`). */
  name: string;
}

/** One key of one source. Keys are paths with ":" between sections (`server:limits:maxRequestBodySize`). */
export interface ConfigEntry {
  key: string;
  value: ConfigValue;
  source: ConfigSource;
}

/** How an error message names a source. */
export function describeSource(source: ConfigSource): string {
  switch (source.kind) {
    case "file":
      return source.name;
    case "environment":
      return `environment variable ${source.name}`;
    case "argument":
      return `command-line argument ${source.name}`;
  }
}

/** Keys compare case-insensitively, as in ASP.NET Core; ":" separates sections. */
export function normalizeKey(key: string): string {
  return key.toLowerCase();
}

/** A stored entry, and the order its source was added in (later sources win). */
interface Stored extends ConfigEntry {
  rank: number;
}

/**
 * The configuration: every source's keys, flattened to ":"-paths, later sources winning
 * key by key. Read-only; `WebApplication.createBuilder()` builds it.
 *
 *     builder.configuration.get("server:limits:maxRequestBodySize")
 *     builder.configuration.getSection("server:endpoints").getChildren()
 */
export class Configuration {
  readonly #entries: ReadonlyMap<string, Stored>;
  readonly #prefix: string;
  /** This section's path, "" for the root. */
  readonly path: string;

  /** `sources` in order of precedence, lowest first. */
  static fromSources(sources: readonly (readonly ConfigEntry[])[]): Configuration {
    const entries = new Map<string, Stored>();
    sources.forEach((source, rank) => {
      for (const entry of source) {
        const key = normalizeKey(entry.key);
        // A later source replaces the key; delete first so iteration follows the winner's order.
        entries.delete(key);
        entries.set(key, { ...entry, rank });
      }
    });
    return new Configuration(entries, "");
  }

  private constructor(entries: ReadonlyMap<string, Stored>, path: string) {
    this.#entries = entries;
    this.path = path;
    this.#prefix = path === "" ? "" : `${normalizeKey(path)}:`;
  }

  /** The last segment of this section's path. */
  get key(): string {
    return this.path.slice(this.path.lastIndexOf(":") + 1);
  }

  /** The value at `key` below this section, or undefined when no source sets it. */
  get(key: string): ConfigValue | undefined {
    return this.#entries.get(this.#prefix + normalizeKey(key))?.value;
  }

  /** The winning entry at `key`, with its source. */
  entry(key: string): ConfigEntry | undefined {
    const stored = this.#entries.get(this.#prefix + normalizeKey(key));
    return stored === undefined ? undefined : { key: stored.key, value: stored.value, source: stored.source };
  }

  /** True when `key` has a value or has keys below it. */
  has(key: string): boolean {
    const full = this.#prefix + normalizeKey(key);
    if (this.#entries.has(full)) return true;
    for (const k of this.#entries.keys()) if (k.startsWith(`${full}:`)) return true;
    return false;
  }

  /** The section at `path` below this one; empty when nothing is set there. */
  getSection(path: string): Configuration {
    return new Configuration(this.#entries, this.path === "" ? path : `${this.path}:${path}`);
  }

  /** The sections directly below this one, in the order their keys were first set. */
  getChildren(): Configuration[] {
    const seen = new Map<string, string>();
    for (const entry of this.#entries.values()) {
      const lower = normalizeKey(entry.key);
      if (!lower.startsWith(this.#prefix) || lower.length === this.#prefix.length) continue;
      const child = entry.key.slice(this.#prefix.length).split(":")[0] as string;
      if (!seen.has(child.toLowerCase())) seen.set(child.toLowerCase(), child);
    }
    return [...seen.values()].map((child) => this.getSection(child));
  }

  /** Every winning entry at or below this section. */
  entries(): ConfigEntry[] {
    const own = this.#prefix.slice(0, -1);
    return [...this.#entries.entries()]
      .filter(([k]) => this.#prefix === "" || k === own || k.startsWith(this.#prefix))
      .map(([, { key, value, source }]) => ({ key, value, source }));
  }

  /**
   * Which of a section's own value and its children a later source set last: a source
   * may replace a section with a scalar (`"minRequestBodyDataRate": null`) or the reverse.
   */
  ownValueWins(): boolean {
    const own = this.#entries.get(this.#prefix.slice(0, -1));
    if (own === undefined) return false;
    for (const [k, stored] of this.#entries) {
      if (k.startsWith(this.#prefix) && stored.rank > own.rank) return false;
    }
    return true;
  }
}
