// Before a server is measured, it must answer the hello routes over the workload's
// protocol exactly as examples/hello does; otherwise it is left out with a notice.
// The harness's certificate is self-signed, so the checks do not verify it.
import { request as http1Request } from "node:http";
import { connect as http2Connect } from "node:http2";
import { request as httpsRequest } from "node:https";

/** One HTTP/1.1 exchange on a fresh connection; resolves with status, headers, body and TLS version. */
export function fetchOnce(url, { method = "GET", body, headers = {}, timeoutMs = 5000 } = {}) {
  const secure = url.startsWith("https:");
  const request = secure ? httpsRequest : http1Request;
  const options = {
    method,
    headers,
    agent: false,
    timeout: timeoutMs,
    ...(secure ? { rejectUnauthorized: false } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks),
          tls: secure ? res.socket.getProtocol?.() : undefined,
        }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** The same over HTTP/2 (h2c, or h2 by ALPN), each exchange on its own session. */
function fetchHttp2(url, { method = "GET", body, headers = {}, timeoutMs = 5000 } = {}) {
  const { origin, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const session = http2Connect(origin, { rejectUnauthorized: false });
    const timer = setTimeout(
      () => session.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (error) => {
      clearTimeout(timer);
      session.destroy();
      reject(error);
    };
    session.once("error", fail);
    const stream = session.request({ ":method": method, ":path": pathname, ...headers });
    stream.once("error", fail);
    let status = 0;
    let responseHeaders = {};
    stream.once("response", (h) => {
      status = h[":status"];
      responseHeaders = h;
    });
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.once("end", () => {
      clearTimeout(timer);
      const result = {
        status,
        headers: responseHeaders,
        body: Buffer.concat(chunks),
        tls: session.encrypted ? session.socket.getProtocol?.() : undefined,
        alpn: session.alpnProtocol,
      };
      session.close();
      resolve(result);
    });
    stream.end(body);
  });
}

/**
 * Checks the three routes over `protocol` ("http1", "h2c", "https" or "h2"); returns
 * the problems found, empty when the server may be measured.
 */
export async function checkRoutes(base, protocol = "http1") {
  const h2 = protocol === "h2c" || protocol === "h2";
  const fetch = h2 ? fetchHttp2 : fetchOnce;
  const problems = [];
  const text = await fetch(`${base}/`);
  if (text.status !== 200 || text.body.toString() !== "Hello, World!") {
    problems.push(`GET / answered ${text.status} ${JSON.stringify(text.body.toString().slice(0, 60))}`);
  }
  if (!String(text.headers["content-type"]).toLowerCase().startsWith("text/plain")) {
    problems.push(`GET / has content-type ${text.headers["content-type"]}`);
  }
  // TLS 1.3 is what the TLS workloads are about; a peer that negotiates less is not comparable.
  if ((protocol === "https" || protocol === "h2") && text.tls !== "TLSv1.3") {
    problems.push(`the TLS handshake negotiated ${text.tls}, not TLSv1.3`);
  }
  if (h2 && text.alpn !== (protocol === "h2" ? "h2" : "h2c")) {
    problems.push(`the HTTP/2 session negotiated ${text.alpn}, not ${protocol}`);
  }
  const json = await fetch(`${base}/json`);
  let parsed;
  try {
    parsed = JSON.parse(json.body.toString());
  } catch {
    parsed = undefined;
  }
  if (json.status !== 200 || parsed?.message !== "Hello, World!") {
    problems.push(`GET /json answered ${json.status} ${JSON.stringify(json.body.toString().slice(0, 60))}`);
  }
  const payload = Buffer.alloc(256 * 1024, "peregrine ");
  const echo = await fetch(`${base}/echo`, {
    method: "POST",
    body: payload,
    headers: { "content-type": "application/octet-stream" },
  });
  if (echo.status !== 200 || !echo.body.equals(payload)) {
    problems.push(`POST /echo answered ${echo.status} with ${echo.body.length} of ${payload.length} bytes`);
  }
  return problems;
}
