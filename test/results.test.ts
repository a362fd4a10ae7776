import { describe, expect, it } from "vitest";
import {
  type BodyChunk,
  FeatureCollection,
  IHttpRequestFeature,
  IHttpResponseBodyFeature,
  IHttpResponseFeature,
} from "../packages/peregrine/src/features/index.js";
import { writeResult } from "../packages/peregrine/src/hosting/results.js";
import { HttpContext } from "../packages/peregrine/src/http/context.js";
import { DONE } from "../packages/peregrine/src/http/done.js";
import { HeaderDictionary } from "../packages/peregrine/src/http/headers.js";

/** A context over stub features whose complete() returns `completes`. */
function context(completes: Promise<void>) {
  const features = new FeatureCollection();
  const written: (BodyChunk | undefined)[] = [];
  features.set(IHttpRequestFeature, {
    protocol: "HTTP/1.1",
    scheme: "http",
    method: "GET",
    pathBase: "",
    path: "/",
    queryString: "",
    rawTarget: "/",
    headers: new HeaderDictionary(),
    body: undefined,
  } as unknown as IHttpRequestFeature);
  features.set(IHttpResponseFeature, {
    statusCode: 200,
    reasonPhrase: undefined,
    headers: new HeaderDictionary(),
    hasStarted: false,
    onStarting() {},
    onCompleted() {},
  } as unknown as IHttpResponseFeature);
  features.set(IHttpResponseBodyFeature, {
    complete(chunk?: BodyChunk) {
      written.push(chunk);
      return completes;
    },
  } as unknown as IHttpResponseBodyFeature);
  return { ctx: new HttpContext(features), written };
}

describe("writeResult", () => {
  it("returns nothing to wait for when the server finished the response at once", () => {
    const { ctx, written } = context(DONE);
    expect(writeResult(ctx, "Hello, World!")).toBeUndefined();
    expect(written).toEqual(["Hello, World!"]);
    expect(ctx.response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
  });

  it("returns the server's own promise when the response is still on its way", async () => {
    let finish!: () => void;
    const pending = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const { ctx, written } = context(pending);
    const result = writeResult(ctx, { message: "Hello, World!" });
    expect(result).toBe(pending);
    expect(written).toEqual(['{"message":"Hello, World!"}']);
    finish();
    await result;
  });
});
