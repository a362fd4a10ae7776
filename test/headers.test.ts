import { describe, expect, it } from "vitest";
import { HeaderDictionary } from "../packages/peregrine/src/http/headers.js";

/** Every stored header, as forEachStored (what the native response batch writes) sees them. */
function stored(headers: HeaderDictionary): [string, string | readonly string[]][] {
  const out: [string, string | readonly string[]][] = [];
  headers.forEachStored((value, name) => out.push([name, value]));
  return out;
}

describe("HeaderDictionary", () => {
  it("keeps one header without a Map, and every operation sees it", () => {
    const headers = new HeaderDictionary();
    expect(headers.size).toBe(0);
    expect(headers.has("content-type")).toBe(false);
    expect(stored(headers)).toEqual([]);
    expect(headers.pack()).toBe("");

    headers.set("Content-Type", "text/plain");
    expect(headers.size).toBe(1);
    expect(headers.get("content-type")).toBe("text/plain");
    expect(headers.has("CONTENT-TYPE")).toBe(true);
    expect(headers.getAll("content-type")).toEqual(["text/plain"]);
    expect(stored(headers)).toEqual([["content-type", "text/plain"]]);
    expect(headers.pack()).toBe("content-type\ntext/plain");

    headers.set("content-type", "application/json");
    expect(headers.get("content-type")).toBe("application/json");
    expect(headers.size).toBe(1);
  });

  it("appends to the one header, and deletes and clears it", () => {
    const headers = new HeaderDictionary();
    headers.append("set-cookie", "a=1");
    headers.append("Set-Cookie", "b=2");
    expect(headers.getAll("set-cookie")).toEqual(["a=1", "b=2"]);
    expect(headers.get("set-cookie")).toBe("a=1, b=2");
    expect(headers.pack()).toBe("set-cookie\na=1\nset-cookie\nb=2");
    expect(headers.delete("x-other")).toBe(false);
    expect(headers.delete("SET-COOKIE")).toBe(true);
    expect(headers.size).toBe(0);
    expect(headers.delete("set-cookie")).toBe(false);

    headers.set("x-a", ["1", "2"]);
    expect(headers.getAll("x-a")).toEqual(["1", "2"]);
    headers.set("x-a", []);
    expect(headers.has("x-a")).toBe(false);
    headers.set("x-b", 7);
    headers.clear();
    expect(headers.size).toBe(0);
    expect([...headers]).toEqual([]);
  });

  it("moves the one header into a Map when a second name comes, keeping the order", () => {
    const headers = new HeaderDictionary();
    headers.set("content-type", "text/plain");
    headers.set("cache-control", "no-store");
    headers.append("content-type", "charset=utf-8");
    expect(headers.size).toBe(2);
    expect(stored(headers)).toEqual([
      ["content-type", ["text/plain", "charset=utf-8"]],
      ["cache-control", "no-store"],
    ]);
    expect(headers.pack()).toBe("content-type\ntext/plain\ncontent-type\ncharset=utf-8\ncache-control\nno-store");
    expect(headers.delete("content-type")).toBe(true);
    expect([...headers]).toEqual([["cache-control", "no-store"]]);
  });

  it("iterates the one header, and goes on from the Map iterating made", () => {
    const headers = new HeaderDictionary({ ETag: '"1"' });
    expect([...headers]).toEqual([["etag", '"1"']]);
    expect(headers.toJSON()).toEqual({ etag: '"1"' });
    expect([...headers.keys()]).toEqual(["etag"]);
    headers.set("etag", '"2"');
    headers.set("vary", "accept");
    expect([...headers]).toEqual([
      ["etag", '"2"'],
      ["vary", "accept"],
    ]);
  });

  it("refuses changes once locked, whatever holds the header", () => {
    const headers = new HeaderDictionary();
    headers.set("content-type", "text/plain");
    headers.lock();
    expect(() => headers.set("content-type", "text/html")).toThrow(/cannot change/);
    expect(() => headers.delete("content-type")).toThrow(/cannot change/);
    expect(headers.get("content-type")).toBe("text/plain");
  });

  it("checks every name, the one checked last and the empty one too", () => {
    const headers = new HeaderDictionary();
    // Before any name was checked, and again after a valid one (the last is cached).
    expect(() => headers.set("", "x")).toThrow(expect.objectContaining({ code: "PEREGRINE_INVALID_HEADER" }));
    headers.set("X-Once", "1");
    headers.set("X-Once", "2");
    expect(() => headers.set("", "x")).toThrow(expect.objectContaining({ code: "PEREGRINE_INVALID_HEADER" }));
    expect(() => headers.append("bad name", "x")).toThrow(
      expect.objectContaining({ code: "PEREGRINE_INVALID_HEADER" }),
    );
    expect(stored(headers)).toEqual([["x-once", "2"]]);
  });

  it("loads a lazy subclass's headers before any other", () => {
    let loads = 0;
    class Lazy extends HeaderDictionary {
      protected override load(): Map<string, string | string[]> {
        loads++;
        return new Map([["host", "example.test"]]);
      }
    }
    const headers = new Lazy();
    expect(loads).toBe(0);
    headers.set("x-extra", "1");
    expect(loads).toBe(1);
    expect(headers.get("host")).toBe("example.test");
    expect(stored(headers)).toEqual([
      ["host", "example.test"],
      ["x-extra", "1"],
    ]);
    expect(headers.size).toBe(2);
  });
});
