import { ErrorCodes, PeregrineError } from "../errors.js";
import type { IHttpRequestTrailersFeature } from "../features/index.js";
import { HeaderDictionary } from "../http/headers.js";

/**
 * IHttpRequestTrailersFeature for any server: trailers become readable once the request
 * body has been read to the end. Each server says how to tell that, and where the
 * trailer fields come from.
 */
export class RequestTrailers implements IHttpRequestTrailersFeature {
  readonly #complete: () => boolean;
  readonly #read: () => Iterable<readonly [string, string]>;
  #trailers: HeaderDictionary | undefined;

  constructor(complete: () => boolean, read: () => Iterable<readonly [string, string]>) {
    this.#complete = complete;
    this.#read = read;
  }

  get available(): boolean {
    return this.#complete();
  }

  get trailers(): HeaderDictionary {
    if (!this.available) {
      throw new PeregrineError(
        ErrorCodes.TRAILERS_NOT_AVAILABLE,
        "request trailers are not available until the request body has been read to the end",
      );
    }
    if (this.#trailers === undefined) {
      this.#trailers = new HeaderDictionary(this.#read());
      this.#trailers.lock();
    }
    return this.#trailers;
  }
}
