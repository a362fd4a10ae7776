import type http from "node:http";
import type { Refusal } from "./node-limits.js";

/** reg-name / IPv4 / [IPv6] with an optional port: what a Host field may hold. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+;=%]*)(?::\d*)?$/;

/**
 * The checks of the native core's request guard that can be made on a head node has
 * already parsed (docs/security.md): Host, the target form, the version and the body
 * framing. What llhttp decides while parsing (line endings, chunk syntax) is out of
 * reach; docs/servers.md says which cases differ.
 */
export function headRefusal(req: http.IncomingMessage): Refusal | undefined {
  const version = req.httpVersion;
  if (version !== "1.1" && version !== "1.0") {
    // llhttp reads a request line without a version as HTTP/0.9; other versions it refuses itself.
    return version === "0.9"
      ? { status: 400, reason: "BAD_REQUEST_LINE" }
      : { status: 505, reason: "HTTP_VERSION_NOT_SUPPORTED" };
  }
  const target = req.url ?? "";
  const method = req.method ?? "";
  if (target === "*" ? method !== "OPTIONS" : method === "CONNECT")
    return { status: 400, reason: "BAD_REQUEST_TARGET_FORM" };

  const hosts: string[] = [];
  const codings: string[] = [];
  let lengths = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name === "host") hosts.push(raw[i + 1] as string);
    else if (name === "transfer-encoding") codings.push(raw[i + 1] as string);
    else if (name === "content-length") lengths++;
  }
  if (hosts.length > 1 || (hosts.length === 0 && version === "1.1")) return { status: 400, reason: "BAD_REQUEST_HOST" };
  const host = hosts[0];
  if (host !== undefined && !HOST_VALUE.test(host)) return { status: 400, reason: "BAD_REQUEST_HOST_VALUE" };
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) {
    // absolute-form: its authority must be the Host field.
    const authority = target.slice(target.indexOf("//") + 2).split(/[/?#]/, 1)[0] ?? "";
    if (host === undefined || authority.toLowerCase() !== host.toLowerCase())
      return { status: 400, reason: "BAD_REQUEST_HOST_MISMATCH" };
  }

  if (codings.length > 0) {
    if (version === "1.0") return { status: 400, reason: "BAD_REQUEST_TE_HTTP10" };
    if (lengths > 0) return { status: 400, reason: "BAD_REQUEST_TE_CL" };
    // Only "chunked" is decoded, and it must be the one and only coding.
    const list = codings
      .join(",")
      .split(",")
      .map((c) => c.trim().toLowerCase());
    if (list.length !== 1 || list[0] !== "chunked") return { status: 400, reason: "BAD_REQUEST_TE" };
  }
  const length = req.headers["content-length"];
  if (length !== undefined && !(/^\d+$/.test(length) && Number(length) <= Number.MAX_SAFE_INTEGER)) {
    return { status: 400, reason: "BAD_REQUEST_CONTENT_LENGTH" };
  }
  return undefined;
}
