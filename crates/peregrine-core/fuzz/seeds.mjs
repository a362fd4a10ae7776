// Writes seed inputs for the fuzz targets into corpus/<target>/: every request of the
// request-smuggling corpus (test/smuggling/corpus.ts) for the head and guard targets,
// their chunked bodies for the chunked target, and endpoint URLs. scripts/fuzz.sh runs
// this before fuzzing; the seeds are not committed.
//
// usage: node crates/peregrine-core/fuzz/seeds.mjs <corpus dir>
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const out = process.argv[2] ?? join(root, "crates/peregrine-core/fuzz/corpus");

// corpus.ts has no imports: transpiling it alone with the repo's TypeScript is enough.
const ts = createRequire(join(root, "package.json"))("typescript");
const source = readFileSync(join(root, "test/smuggling/corpus.ts"), "utf8");
const { outputText } = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
});
const temp = mkdtempSync(join(tmpdir(), "peregrine-seeds-"));
let corpus;
try {
  const file = join(temp, "corpus.mjs");
  writeFileSync(file, outputText);
  ({ corpus } = await import(pathToFileURL(file).href));
} finally {
  rmSync(temp, { recursive: true, force: true });
}

function write(target, name, bytes) {
  const dir = join(out, target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `seed-${name}`), bytes);
}

let count = 0;
for (const c of corpus) {
  const bytes = Buffer.from(c.request, "latin1");
  write("head_validate", c.id, bytes);
  write("guard_scan", c.id, bytes);
  const end = c.request.indexOf("\r\n\r\n");
  if (end >= 0 && /transfer-encoding/i.test(c.request.slice(0, end))) {
    write("chunked", c.id, bytes.subarray(end + 4));
  }
  count++;
}

const urls = [
  "http://localhost:5000",
  "https://localhost:5001/",
  "http://*:8080",
  "http://+:80",
  "http://0.0.0.0:0",
  "http://127.0.0.1:65535",
  "http://[::1]:8080",
  "http://[::]:0",
  "HTTPS://[fe80::1]",
  "ftp://127.0.0.1:21",
  "unix:/run/app.sock",
  "UNIX:/tmp/a b.sock",
];
for (const [i, url] of urls.entries()) write("endpoint_parse", String(i), url);
console.log(`wrote ${count} request seeds and ${urls.length} endpoint seeds to ${out}`);
