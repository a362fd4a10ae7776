import { ErrorCodes, PeregrineError } from "../errors.js";
import type { Logger } from "../logging.js";
import { loadNativeBinding } from "../native/binding.js";
import { NativeServer, type NativeServerOptions } from "../native/native-server.js";
import type { IServer } from "../server/server.js";
import { NodeServer } from "./node/node-server.js";

/** The servers `WebApplication.create({ server })` and `PEREGRINE_SERVER` can name. */
export type ServerName = "native" | "node";

const NAMES: readonly string[] = ["native", "node"];

let warnedFallback = false;

/**
 * Loads the native addon, or throws PEREGRINE_NATIVE_UNAVAILABLE.
 * `PEREGRINE_TEST_NATIVE_LOAD_ERROR`, for tests only: when set, loading fails with that
 * text as the load error, so the fallback can be tested where the addon does load.
 */
function checkNativeLoads(): void {
  const simulated = process.env.PEREGRINE_TEST_NATIVE_LOAD_ERROR;
  if (simulated !== undefined && simulated !== "") {
    throw new PeregrineError(
      ErrorCodes.NATIVE_UNAVAILABLE,
      `the native addon @peregrine/native could not be loaded on ${process.platform}-${process.arch}: ${simulated}`,
    );
  }
  loadNativeBinding();
}

/** `PEREGRINE_SERVER`, checked: undefined when unset or empty. */
function serverFromEnv(): ServerName | undefined {
  const value = process.env.PEREGRINE_SERVER?.trim();
  if (value === undefined || value === "") return undefined;
  if (!NAMES.includes(value)) {
    throw new PeregrineError(
      ErrorCodes.INVALID_OPTION,
      `PEREGRINE_SERVER = ${JSON.stringify(value)} is invalid: use "native" or "node"`,
    );
  }
  return value as ServerName;
}

/**
 * Picks the server for a WebApplication. The `server` option wins, then
 * `PEREGRINE_SERVER`, then the native server. When the native addon cannot load, the
 * default falls back to the NodeServer with one warning per process naming the load
 * error; "native" asked for by name (option or env) fails with PEREGRINE_NATIVE_UNAVAILABLE.
 */
export function selectServer(
  choice: ServerName | undefined,
  options: NativeServerOptions & { logger: Logger },
): IServer {
  const named = choice ?? serverFromEnv();
  if (named === "node") return new NodeServer(options);
  try {
    checkNativeLoads();
  } catch (error) {
    if (named === "native" || !(error instanceof PeregrineError) || error.code !== ErrorCodes.NATIVE_UNAVAILABLE)
      throw error;
    if (!warnedFallback) {
      warnedFallback = true;
      options.logger.warn(
        { code: error.code },
        `${error.message}. Falling back to the node server (node:http). Set server: "node" or PEREGRINE_SERVER=node to choose it and silence this warning.`,
      );
    }
    return new NodeServer(options);
  }
  return new NativeServer(options);
}

/** True for the names `server` takes as a string. */
export function isServerName(value: unknown): value is ServerName {
  return typeof value === "string" && NAMES.includes(value);
}
