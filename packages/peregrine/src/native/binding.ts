import loadNativeAddon from "@peregrine/native/load";
import { ErrorCodes, PeregrineError } from "../errors.js";
import type { NativeTlsOptions } from "../server/tls.js";
import { nativeUnavailableMessage } from "./load-attempts.js";

/** Options the native core takes; the TS layer validates and fills defaults first. */
export interface NativeServerOptions {
  urls: string[];
  protocols?: string[];
  /** Bytes; negative for unlimited. */
  maxRequestBodySize: number;
  maxRequestBufferSize: number;
  maxResponseBufferSize: number;
  /** Negative for unlimited. */
  maxConcurrentConnections: number;
  /** Negative: unlimited. */
  maxConcurrentUpgradedConnections?: number;
  maxRequestLineSize: number;
  maxRequestHeaderCount: number;
  maxRequestHeadersTotalSize: number;
  /** Milliseconds. */
  keepAliveTimeout: number;
  /** Milliseconds. */
  requestHeadersTimeout: number;
  minRequestBodyDataRate: { bytesPerSecond: number; gracePeriod: number } | null;
  minResponseDataRate: { bytesPerSecond: number; gracePeriod: number } | null;
  addServerHeader: boolean;
  http2: {
    maxStreamsPerConnection: number;
    headerTableSize: number;
    maxFrameSize: number;
    maxRequestHeaderFieldSize: number;
    initialConnectionWindowSize: number;
    initialStreamWindowSize: number;
    /** Milliseconds; negative for off. */
    keepAlivePingDelay: number;
    keepAlivePingTimeout: number;
  };
  tls?: NativeTlsOptions;
  /** Endpoints' own certificates, one per URL; null uses `tls`. */
  endpointTls?: (NativeTlsOptions | null)[];
  /** Worker threads that serve the requests; each attaches with NativeServer.attach. */
  workers?: number;
}

/** The addon's NativeServer class (crates/peregrine-node/src/server.rs). */
export interface NativeServerHandle {
  listen(): string[];
  drain(): Buffer[] | null;
  respond(
    id: number,
    status: number,
    headers: string,
    body: string | Uint8Array | null | undefined,
    reason?: string | undefined,
  ): void;
  /** Whole responses: see ResponseBatch. The core answers them on its own threads; a refusal comes back as a `refused` tape event. */
  respondBatch(records: Buffer, bodies: (string | Uint8Array | undefined)[]): void;
  startResponse(id: number, status: number, headers: string, reason?: string | undefined): void;
  /** Answers with the request's own unread body, which the core streams back; the exchange ends, as with respond. */
  relay(id: number, status: number, headers: string, reason?: string | undefined): void;
  /** 0: go on; 1: buffer full, wait for write-ready; 2: closed. */
  write(id: number, chunk: string | Uint8Array): number;
  finish(id: number, trailers: string): void;
  /**
   * Gives back a request body chunk (the ArrayBuffer of a Buffer from drain) that
   * nothing else holds: it is detached and its memory freed once the core is done
   * with it. False, and nothing done, for any other ArrayBuffer.
   */
  releaseChunk(buffer: ArrayBufferLike): boolean;
  abort(id: number): void;
  /** RST_STREAM with `code` on HTTP/2; closes the connection on HTTP/1.1. */
  reset(id: number, code: number): void;
  reloadTls(tls: NativeTlsOptions): void;
  readBody(id: number): void;
  /** Answers 101 with the packed headers; readBody, write and finish then carry the upgraded stream. */
  upgrade(id: number, headers: string): void;
  setMaxRequestBodySize(id: number, limit: number): void;
  stop(timeoutMs: number): void;
  close(): void;
  readonly inFlight: number;
  /** With the workers option: the token workers attach with. */
  readonly poolToken: number | null;
  stats(): {
    currentConnections: number;
    idleConnections: number;
    totalConnections: number;
    totalRequests: number;
    rejections: { reason: string; count: number }[];
  };
}

export interface NativeBinding {
  NativeServer: {
    new (options: NativeServerOptions, onWake: () => void): NativeServerHandle;
    /** On a worker thread: serve host `index` of the pool `token`. */
    attach(token: number, index: number, onWake: () => void): NativeServerHandle;
  };
}

let cached: NativeBinding | undefined;
let loadError: unknown;

/**
 * Loads the addon on first use, so that importing peregrine never fails on a platform
 * without a prebuilt binary.
 */
export function loadNativeBinding(): NativeBinding {
  if (cached !== undefined) return cached;
  if (loadError === undefined) {
    try {
      cached = loadNativeAddon() as NativeBinding;
      return cached;
    } catch (error) {
      loadError = error;
    }
  }
  throw new PeregrineError(ErrorCodes.NATIVE_UNAVAILABLE, nativeUnavailableMessage(loadError), { cause: loadError });
}
