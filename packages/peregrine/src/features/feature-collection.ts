/**
 * A typed key for a feature. Keys are compared by identity, so each feature has one
 * key object, exported next to its interface under the same name.
 */
export class FeatureKey<T> {
  declare readonly __type?: T;
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

export interface IFeatureCollection {
  get<T>(key: FeatureKey<T>): T | undefined;
  set<T>(key: FeatureKey<T>, value: T | undefined): void;
  /** Increments whenever a feature is set, so views can cache lookups. */
  readonly revision: number;
}

/**
 * Features stored by key. A collection may fall back to `defaults` (a request's
 * features fall back to its connection's), and subclasses may supply features lazily
 * through `resolve`, so that a server creates a feature object only when it is used.
 */
export class FeatureCollection implements IFeatureCollection {
  private _features: Map<FeatureKey<unknown>, unknown> | undefined;
  private _revision = 0;

  constructor(readonly defaults?: IFeatureCollection) {}

  get<T>(key: FeatureKey<T>): T | undefined {
    const features = this._features;
    if (features?.has(key)) return features.get(key) as T | undefined;
    const resolved = this.resolve(key);
    if (resolved !== undefined) return resolved;
    return this.defaults?.get(key);
  }

  set<T>(key: FeatureKey<T>, value: T | undefined): void {
    (this._features ??= new Map()).set(key, value);
    this._revision++;
  }

  get revision(): number {
    return this._revision + (this.defaults?.revision ?? 0);
  }

  /** Supplies features the collection did not have set explicitly. */
  protected resolve<T>(_key: FeatureKey<T>): T | undefined {
    return undefined;
  }
}
