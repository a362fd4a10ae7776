import { isIP } from "node:net";
import { ErrorCodes, PeregrineError } from "../errors.js";

/**
 * An endpoint URL as users write it (`http://localhost:5000`, `http://*:8080`,
 * `http://[::1]:0`, `unix:/run/app.sock`), parsed by the same rules as the native core
 * (crates/peregrine-core/src/endpoint.rs), so every server accepts the same forms.
 */
export interface EndpointUrl {
  url: string;
  scheme: "http" | "https";
  /** The addresses to bind, in order; with `localhost`, IPv4 first so that port 0 is picked there. */
  hosts: string[];
  port: number;
  /** True for `localhost`: hosts after the first may be missing on this machine. */
  optionalAfterFirst: boolean;
  /** For `unix:/path`, the socket's path (served as http; `hosts` is then empty). */
  socketPath?: string;
}

/** The longest unix socket path: `sun_path` holds 108 bytes on Linux, with a NUL. */
const MAX_UNIX_PATH_BYTES = 107;

/** Checks the path of a `unix:` endpoint, by the native core's rules (endpoint.rs). */
function parseUnixEndpoint(url: string, path: string): EndpointUrl {
  if (!path.startsWith("/")) throw invalid(url, "a unix socket path must be absolute, as in unix:/run/app.sock");
  if (path.endsWith("/")) throw invalid(url, "a unix socket path must name a file, not a directory");
  if (path.includes("\0")) throw invalid(url, "a unix socket path cannot contain NUL");
  if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
    throw invalid(url, `a unix socket path can be at most ${MAX_UNIX_PATH_BYTES} bytes long`);
  }
  return { url, scheme: "http", hosts: [], port: 0, optionalAfterFirst: false, socketPath: path };
}

function invalid(url: string, why: string): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_URL, `endpoint URL "${url}" is invalid: ${why}`);
}

/** Parses `scheme://host[:port][/]` or `unix:/path`. A server endpoint has no path. */
export function parseEndpointUrl(url: string): EndpointUrl {
  if (url.slice(0, 5).toLowerCase() === "unix:") return parseUnixEndpoint(url, url.slice(5));
  const sep = url.indexOf("://");
  if (sep < 0) throw invalid(url, "expected scheme://host:port");
  const schemeText = url.slice(0, sep).toLowerCase();
  if (schemeText !== "http" && schemeText !== "https") {
    throw new PeregrineError(
      ErrorCodes.UNSUPPORTED_SCHEME,
      `endpoint URL "${url}" has scheme "${schemeText}"; use http or https`,
    );
  }
  const scheme = schemeText;
  let authority = url.slice(sep + 3);
  if (authority.endsWith("/")) authority = authority.slice(0, -1);
  if (authority.includes("/")) throw invalid(url, "a server endpoint cannot have a path");
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) throw invalid(url, "bad host or port");
    host = authority.slice(1, close);
    const after = authority.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) throw invalid(url, "bad host or port");
      portText = after.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon < 0) host = authority;
    else {
      host = authority.slice(0, colon);
      if (host.includes(":")) throw invalid(url, "bad host or port");
      portText = authority.slice(colon + 1);
    }
  }
  let port: number;
  if (portText === undefined) port = scheme === "https" ? 443 : 80;
  else {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (!(port >= 0 && port <= 65535)) throw invalid(url, "port must be 0-65535");
  }
  if (host === "") throw invalid(url, "missing host");
  if (host === "*" || host === "+") return { url, scheme, hosts: ["0.0.0.0"], port, optionalAfterFirst: false };
  if (host.toLowerCase() === "localhost")
    return { url, scheme, hosts: ["127.0.0.1", "::1"], port, optionalAfterFirst: true };
  // node:net takes link-local addresses with a scope (`fe80::1%eth0`); the native core
  // does not, so neither server does (endpoint.rs says the same).
  if (host.includes("%"))
    throw invalid(
      url,
      "IPv6 zone IDs (such as %eth0) are not supported: listen on [::] or on the interface's own address",
    );
  const family = isIP(host);
  if (family === 0) {
    throw invalid(url, "host must be an IP address, localhost, * or + (names other than localhost are not resolved)");
  }
  if (host === "0.0.0.0" || host === "::" || /^[0:]+$/.test(host))
    return { url, scheme, hosts: ["0.0.0.0"], port, optionalAfterFirst: false };
  return { url, scheme, hosts: [host], port, optionalAfterFirst: false };
}

/** The URL of a bound address, as reported in the server-addresses feature. */
export function urlFor(scheme: string, address: string, port: number): string {
  return address.includes(":") ? `${scheme}://[${address}]:${port}` : `${scheme}://${address}:${port}`;
}

/** Maps a listen error to the stable codes the native core uses. */
export function bindError(
  endpoint: EndpointUrl,
  host: string,
  port: number,
  error: NodeJS.ErrnoException,
): PeregrineError {
  const code =
    error.code === "EADDRINUSE"
      ? ErrorCodes.ADDRESS_IN_USE
      : error.code === "EADDRNOTAVAIL"
        ? ErrorCodes.ADDRESS_NOT_AVAILABLE
        : ErrorCodes.BIND_FAILED;
  const address =
    endpoint.socketPath !== undefined
      ? `unix:${endpoint.socketPath}`
      : urlFor(endpoint.scheme, host, port).replace(/^https?:\/\//, "");
  return new PeregrineError(code, `cannot listen on ${address} for endpoint "${endpoint.url}": ${error.message}`, {
    cause: error,
  });
}
