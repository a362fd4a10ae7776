// One conformance suite for every server: each case runs on each server that has the
// capabilities it needs; the others report it as "not supported by <server>". The run
// ends with a table of cases × servers.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  hasOpenssl,
  makeCertificates,
  removeCertificates,
  requireTool,
  type TestCertificates,
} from "../support/certs.js";
import { CASES, type CaseEnvironment } from "./cases.js";
import { ALL, SERVERS, stopAll } from "./harness.js";

type Outcome = "pass" | "FAIL" | "not supported";
const results = new Map<string, Map<string, Outcome>>();
const record = (name: string, server: string, outcome: Outcome) => {
  if (!results.has(name)) results.set(name, new Map());
  results.get(name)?.set(server, outcome);
};

let certificates: TestCertificates | undefined;
const env: CaseEnvironment = {
  certificates() {
    if (certificates === undefined) {
      if (!requireTool("openssl", hasOpenssl())) throw new Error("the TLS cases need openssl to make certificates");
      certificates = makeCertificates();
    }
    return certificates;
  },
};

afterEach(stopAll);

afterAll(() => {
  removeCertificates(certificates);
  const names = SERVERS.map((s) => s.name);
  const first = Math.max(...CASES.map((c) => c.name.length), 4);
  const width = Math.max(...names.map((n) => n.length), "not supported".length);
  const row = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(first) : c.padEnd(width))).join(" | ")} |`;
  const lines = [row(["case", ...names]), row(["-".repeat(first), ...names.map(() => "-".repeat(width))])];
  for (const c of CASES) lines.push(row([c.name, ...names.map((n) => results.get(c.name)?.get(n) ?? "not run")]));
  const unsupported = SERVERS.map((s) => `${s.name}: ${ALL.filter((c) => !s.capabilities.has(c)).join(", ") || "—"}`);
  console.log(
    `\nConformance: cases × servers\n${lines.join("\n")}\n\nMissing capabilities — ${unsupported.join("; ")}\n`,
  );
});

for (const sut of SERVERS) {
  describe(`conformance on ${sut.name}`, () => {
    for (const c of CASES) {
      const missing = c.needs.filter((need) => !sut.capabilities.has(need));
      if (missing.length > 0) {
        // Reported, never silently skipped: the name says why, and the table lists it.
        it.skip(`${c.name} — not supported by ${sut.name} (needs ${missing.join(", ")})`, () => {});
        record(c.name, sut.name, "not supported");
        continue;
      }
      it(c.name, async () => {
        try {
          await c.run(sut, env);
          record(c.name, sut.name, "pass");
        } catch (error) {
          record(c.name, sut.name, "FAIL");
          throw error;
        }
      });
    }
  });
}

it("every case names its needs from the known capabilities", () => {
  for (const c of CASES) for (const need of c.needs) expect(SERVERS[0]?.capabilities.has(need)).toBe(true);
});
