// Replays the request-smuggling corpus (test/smuggling/corpus.ts) over raw sockets.
// Every case gets its own connection and one write. All cases run at once in beforeAll,
// each bounded by REPLAY_TIMEOUT_MS, so the file stays fast even when many fail. Then
// one `it` per case checks that case's outcome.
import type { WebApplication } from "peregrine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaseClasses, corpus, type SmugglingCase, Sources } from "./smuggling/corpus.js";
import { RawClient, startApp } from "./support/server.js";

/** How long a case may take to be answered (and closed, for rejections). */
const REPLAY_TIMEOUT_MS = 3_000;
/** After the expected responses of a served case, how long to watch for extra ones. */
const SETTLE_MS = 150;

interface ParsedResponse {
  status: number;
  head: string;
}

interface Outcome {
  responses: ParsedResponse[];
  /** Bytes after the last complete response (a partial or garbled reply). */
  leftover: string;
  closed: boolean;
  invocations: number;
}

/** App invocations per connection, keyed by the client's local port. */
const invocations = new Map<number, number>();
const outcomes = new Map<string, Outcome>();
let app: WebApplication | undefined;

/**
 * Splits what the server sent into complete responses. Bodies are framed by
 * Content-Length or chunked coding; a response without either has no body here
 * (the app always answers "ok" with a length, and rejections carry none).
 */
function parseResponses(received: Buffer): { responses: ParsedResponse[]; rest: Buffer } {
  const responses: ParsedResponse[] = [];
  let offset = 0;
  for (;;) {
    const headEnd = received.indexOf("\r\n\r\n", offset, "latin1");
    if (headEnd < 0) break;
    const head = received.subarray(offset, headEnd).toString("latin1");
    const status = /^HTTP\/1\.[01] (\d{3}) /.exec(head);
    if (status === null) break;
    let end = headEnd + 4;
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length !== null) {
      end += Number(length[1]);
      if (end > received.length) break;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const bodyEnd = chunkedBodyEnd(received, end);
      if (bodyEnd < 0) break;
      end = bodyEnd;
    }
    responses.push({ status: Number(status[1]), head });
    offset = end;
  }
  return { responses, rest: received.subarray(offset) };
}

/** The offset just past a chunked body starting at `start`, or -1 if incomplete. */
function chunkedBodyEnd(buffer: Buffer, start: number): number {
  let offset = start;
  for (;;) {
    const lineEnd = buffer.indexOf("\r\n", offset, "latin1");
    if (lineEnd < 0) return -1;
    const size = Number.parseInt(buffer.subarray(offset, lineEnd).toString("latin1"), 16);
    if (Number.isNaN(size)) return -1;
    if (size === 0) {
      const trailerEnd = buffer.indexOf("\r\n\r\n", lineEnd, "latin1");
      return trailerEnd < 0 ? -1 : trailerEnd + 4;
    }
    offset = lineEnd + 2 + size + 2;
    if (offset > buffer.length) return -1;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function replay(port: number, c: SmugglingCase): Promise<Outcome> {
  const client = await RawClient.connect(port);
  const localPort = client.socket.localPort as number;
  try {
    client.write(Buffer.from(c.request, "latin1"));
    const expectedCount = c.expected.statuses.length;
    // Waits throw on timeout, or on close before enough responses: both are outcomes to
    // assert on, not errors of the harness.
    if (c.expected.closes) {
      await client.waitForClose(REPLAY_TIMEOUT_MS).catch(() => {});
    } else {
      await client
        .waitFor((r) => parseResponses(r).responses.length >= expectedCount, REPLAY_TIMEOUT_MS)
        .catch(() => {});
      await sleep(SETTLE_MS);
    }
    const { responses, rest } = parseResponses(await client.waitFor(() => true));
    return {
      responses,
      leftover: rest.toString("latin1"),
      closed: client.closed,
      invocations: invocations.get(localPort) ?? 0,
    };
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  const started = await startApp((a) => {
    // Counting in middleware sees every request the pipeline runs, routed or not.
    a.use((ctx, next) => {
      const port = ctx.connection.remotePort;
      invocations.set(port, (invocations.get(port) ?? 0) + 1);
      return next();
    });
    a.map("*", "/{**path}", async (ctx) => {
      // Reading the whole body is what would surface a request hidden in it.
      await ctx.request.bytes();
      return "ok";
    });
  });
  app = started.app;
  const results = await Promise.all(corpus.map((c) => replay(started.port, c)));
  for (const [i, c] of corpus.entries()) outcomes.set(c.id, results[i] as Outcome);
});

afterAll(async () => {
  await app?.stop();
});

describe("request-smuggling corpus", () => {
  it("is well formed: unique ids, at least 60 cases, bytes only, known sources", () => {
    const ids = corpus.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(corpus.length).toBeGreaterThanOrEqual(60);
    for (const c of corpus) {
      expect(c.class in CaseClasses, c.id).toBe(true);
      const wide = [...c.request].some((ch) => (ch.codePointAt(0) as number) > 0xff);
      expect(wide, `${c.id} has a character above 0xFF`).toBe(false);
      expect(c.sources.length, `${c.id} cites no source`).toBeGreaterThan(0);
      for (const s of c.sources) expect(s in Sources, `${c.id} cites unknown ${s}`).toBe(true);
    }
  });

  for (const [cls, title] of Object.entries(CaseClasses)) {
    describe(title, () => {
      for (const c of corpus.filter((k) => k.class === cls)) {
        it(`${c.id}: ${c.description}`, () => {
          const outcome = outcomes.get(c.id);
          if (outcome === undefined) throw new Error(`${c.id} was not replayed`);
          const got = {
            statuses: outcome.responses.map((r) => r.status),
            invocations: outcome.invocations,
            closed: outcome.closed,
          };
          const detail = `received heads: ${JSON.stringify(outcome.responses.map((r) => r.head))}, leftover: ${JSON.stringify(outcome.leftover.slice(0, 200))}`;
          expect(got, detail).toEqual({
            statuses: c.expected.statuses,
            invocations: c.expected.invocations,
            closed: c.expected.closes,
          });
          const last = outcome.responses.at(-1);
          if (last !== undefined && last.status >= 400) {
            expect(last.head, "a rejection answers Connection: close").toMatch(/\r\nconnection:\s*close\s*(\r\n|$)/i);
          }
          expect(outcome.leftover, "no partial or unparseable bytes after the responses").toBe("");
        });
      }
    });
  }
});
