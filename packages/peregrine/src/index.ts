export { Configuration, type ConfigValue } from "./config/configuration.js";
export { BadHttpRequestError, type ErrorCode, ErrorCodes, PeregrineError } from "./errors.js";
export * from "./features/index.js";
export { type HostOptions, type RunningHost, startHost } from "./host/index.js";
export { ApplicationBuilder, type Middleware, type RequestDelegate } from "./hosting/application-builder.js";
export { HostEnvironment } from "./hosting/environment.js";
export { HostingApplication } from "./hosting/hosting-application.js";
export { type HttpResult, writeResult } from "./hosting/results.js";
export { WebApplication, type WebApplicationOptions } from "./hosting/web-application.js";
export { WebApplicationBuilder } from "./hosting/web-application-builder.js";
export { ConnectionInfo, HttpContext, HttpRequest, HttpResponse, type RouteValues } from "./http/context.js";
export { HeaderDictionary, type HeaderValue } from "./http/headers.js";
export { REASON_PHRASES } from "./http/status.js";
export { createConsoleLogger, type Logger, type LogLevel, silentLogger } from "./logging.js";
export {
  type ForwardedHeader,
  type ForwardedHeadersOptions,
  forwardedHeaders,
} from "./middleware/forwarded-headers.js";
export { NativeServer, type NativeServerOptions, type ServerStats } from "./native/native-server.js";
export { matchRouteTemplate, parseRouteTemplate, type RouteTemplate } from "./routing/route-template.js";
export type { EndpointHandler, RouteEndpoint } from "./routing/router.js";
export type { EndpointOptions, HttpProtocols } from "./server/endpoints.js";
export {
  DEFAULT_HTTP2_LIMITS,
  DEFAULT_LIMITS,
  type Http2Limits,
  type LimitsOptions,
  type MinDataRate,
  type ServerLimits,
} from "./server/limits.js";
export type { IHttpApplication, IServer } from "./server/server.js";
export type { ClientCertificateMode, Pem, TlsCertificate, TlsOptions } from "./server/tls.js";
export { NodeServer, type NodeServerOptions } from "./servers/node/node-server.js";
export type { ServerName } from "./servers/select.js";
export { TestServer, type TestServerOptions } from "./servers/test/test-server.js";
