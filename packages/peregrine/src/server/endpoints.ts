import { ErrorCodes, InvalidOptionError, PeregrineError } from "../errors.js";
import { type TlsOptions, toNativeTlsOptions } from "./tls.js";

/** Which HTTP versions an endpoint speaks. */
export type HttpProtocols = "http1" | "http2" | "http1AndHttp2";

/**
 * An endpoint with options, beside the plain `urls`. Over TLS, ALPN picks h2 or
 * http/1.1 among `protocols`; in cleartext, "http1AndHttp2" serves h2c to clients that
 * open with the HTTP/2 preface and HTTP/1.1 to the rest, and "http2" serves only h2c.
 */
export interface EndpointOptions {
  url: string;
  /** Default "http1AndHttp2". */
  protocols?: HttpProtocols;
  /**
   * This endpoint's own certificates (`cert`/`key` and `sni`), in place of the `tls`
   * option's for connections to it. Default: the `tls` option.
   */
  tls?: TlsOptions;
}

const PROTOCOLS = new Set(["http1", "http2", "http1AndHttp2"]);
const KNOWN = new Set(["url", "protocols", "tls"]);

/** Checks the `endpoints` option; unknown keys and protocols are errors. */
export function validateEndpoints(endpoints: unknown): EndpointOptions[] {
  if (!Array.isArray(endpoints)) {
    throw new PeregrineError(ErrorCodes.INVALID_OPTION, "endpoints must be an array of { url, protocols? }");
  }
  return endpoints.map((e: unknown, i) => {
    if (e === null || typeof e !== "object" || typeof (e as EndpointOptions).url !== "string") {
      throw new PeregrineError(ErrorCodes.INVALID_OPTION, `endpoints[${i}] must be { url: string, protocols? }`);
    }
    for (const key of Object.keys(e)) {
      if (!KNOWN.has(key)) {
        throw new PeregrineError(
          ErrorCodes.INVALID_OPTION,
          `endpoints[${i}].${key} is not an endpoint option (known: ${[...KNOWN].join(", ")})`,
        );
      }
    }
    const { url, protocols, tls } = e as EndpointOptions;
    if (protocols !== undefined && !PROTOCOLS.has(protocols)) {
      throw new InvalidOptionError(`endpoints[${i}].protocols`, protocols, 'use "http1", "http2" or "http1AndHttp2"');
    }
    if (tls !== undefined) {
      try {
        toNativeTlsOptions(tls);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new PeregrineError(ErrorCodes.INVALID_OPTION, `endpoints[${i}].${message}`, { cause: error });
      }
    }
    return { url, ...(protocols === undefined ? {} : { protocols }), ...(tls === undefined ? {} : { tls }) };
  });
}
