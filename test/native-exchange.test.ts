// The native exchange against a core that has just ended it: the client went away, and
// the aborted event has not reached JS yet. Every call into the core for the exchange
// then fails with the core's internal PEREGRINE_UNKNOWN_EXCHANGE, which must become
// the abort (ctx.signal fires), never an error the app sees. The handle is a stand-in
// for the binding, so the moment can be held still.
import { describe, expect, it } from "vitest";
import { ErrorCodes, PeregrineError } from "../packages/peregrine/src/errors.js";
import { silentLogger } from "../packages/peregrine/src/logging.js";
import type { NativeServerHandle } from "../packages/peregrine/src/native/binding.js";
import { type ExchangeOwner, NativeExchange } from "../packages/peregrine/src/native/exchange.js";
import { ResponseBatch } from "../packages/peregrine/src/native/response-batch.js";
import { requestHead, viewOf } from "./support/tape.js";

const gone = () => new Error("PEREGRINE_UNKNOWN_EXCHANGE: request 7 is finished or was aborted");

/** An exchange whose every call into the core fails as `fail` says. */
function exchange(fail: () => Error, bodyEmpty = true) {
  const released: number[] = [];
  const throwing = () => {
    throw fail();
  };
  const handle = {
    readBody: throwing,
    startResponse: throwing,
    respond: throwing,
    finish: throwing,
    upgrade: throwing,
    setMaxRequestBodySize: throwing,
    write: () => 2,
    abort: () => {},
  } as unknown as NativeServerHandle;
  const owner: ExchangeOwner = {
    handle,
    logger: silentLogger,
    exchangeLimits: { maxRequestBodySize: 30_000_000, minRequestBodyDataRate: null, minResponseDataRate: null },
    responses: new ResponseBatch(() => true),
    release: (id) => released.push(id),
  };
  const tape = requestHead("/", { method: bodyEmpty ? "GET" : "POST", bodyEmpty });
  const native = new NativeExchange(owner, 7, tape, viewOf(tape), 0, undefined);
  return { native, released };
}

function abortCode(native: NativeExchange): string | undefined {
  return native.signal.aborted ? (native.signal.reason as PeregrineError).code : undefined;
}

describe("a native exchange the core has already ended", () => {
  it("a body read fails with the abort, and the signal fires", async () => {
    const { native, released } = exchange(gone, false);
    await expect(native.request.body[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      code: ErrorCodes.REQUEST_ABORTED,
    });
    expect(abortCode(native)).toBe(ErrorCodes.REQUEST_ABORTED);
    expect(released).toEqual([7]);
  });

  it("starting a streamed response aborts the exchange; writes and complete do nothing", async () => {
    const { native, released } = exchange(gone);
    await native.write("first");
    await native.write("second");
    await native.complete();
    expect(native.isAborted).toBe(true);
    expect(abortCode(native)).toBe(ErrorCodes.REQUEST_ABORTED);
    expect(released).toEqual([7]);
  });

  it("a whole response with a reason phrase aborts the exchange", async () => {
    const { native } = exchange(gone);
    native.reasonPhrase = "Fine";
    await native.complete("body");
    expect(native.isAborted).toBe(true);
    expect(abortCode(native)).toBe(ErrorCodes.REQUEST_ABORTED);
  });

  it("an upgrade fails with the abort", async () => {
    const { native } = exchange(gone);
    const request = native.request as unknown as { headers: { set(n: string, v: string): void } };
    request.headers.set("connection", "upgrade");
    request.headers.set("upgrade", "websocket");
    expect(native.isUpgradableRequest).toBe(true);
    await expect(native.upgrade()).rejects.toMatchObject({ code: ErrorCodes.REQUEST_ABORTED });
    expect(abortCode(native)).toBe(ErrorCodes.REQUEST_ABORTED);
  });

  it("ending a streamed response aborts nothing: the app had finished", async () => {
    // The head went out; the end finds the exchange gone.
    const { native, released } = exchange(gone);
    (native as unknown as { sendHead(): void }).sendHead = () => {};
    await native.write("all of it");
    await native.complete();
    expect(native.isAborted).toBe(false);
    expect(native.signal.aborted).toBe(false);
    expect(released).toEqual([7]);
  });

  it("any other error from the core still reaches the app, with its code", async () => {
    const { native } = exchange(() => new Error("PEREGRINE_INVALID_HEADER: the reason phrase has a CR"));
    native.reasonPhrase = "Bad";
    const thrown = (() => {
      try {
        void native.start();
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(PeregrineError);
    expect(thrown).toMatchObject({ code: ErrorCodes.INVALID_HEADER });
    expect(native.isAborted).toBe(false);
    expect(native.hasStarted).toBe(false);
  });
});
