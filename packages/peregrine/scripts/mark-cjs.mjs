// tsconfig.cjs.json emits CommonJS into dist/cjs, but the package is "type": "module".
// This marker makes Node (and TypeScript, for the .d.ts files beside them) read that
// folder as CommonJS. It is written only when missing or different, so a rebuild never
// leaves it empty for a moment under a process that is loading the CJS build.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const dir = new URL("../dist/cjs/", import.meta.url);
const marker = new URL("package.json", dir);
const content = `${JSON.stringify({ type: "commonjs" })}\n`;
let current = "";
try {
  current = readFileSync(marker, "utf8");
} catch {}
if (current !== content) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(marker, content);
}
