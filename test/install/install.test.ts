// Issue #8: a user installs peregrine from npm tarballs, with no Rust toolchain, and
// imports it from TypeScript whether the app is ESM or CommonJS.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packAll, ROOT, type Tarball } from "./pack.js";
import { InstallProject, makeTempBase } from "./project.js";

const run = promisify(execFile);
const FIXTURE = path.join(import.meta.dirname, "fixture");
const BIN = path.join(ROOT, "node_modules/.bin");

/** What each tarball may hold, beyond package.json, README.md and LICENSE. */
const WHITELIST: Record<string, RegExp> = {
  peregrine: /^dist\/(.+\.(js|d\.ts)|cjs\/package\.json)$/,
  "@peregrine/native": /^(index\.(cjs|d\.cts)|load\.(js|d\.ts))$/,
  "@peregrine/native-linux-x64-gnu": /^peregrine\.linux-x64-gnu\.node$/,
};

/** The version of a workspace dev dependency, so the project installs what npm has cached. */
function workspaceVersion(name: string): string {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

describe.skipIf(process.platform !== "linux" || process.arch !== "x64")("install from packed tarballs", () => {
  let base: string;
  let project: InstallProject;
  let tarballs: Tarball[];

  beforeAll(async () => {
    base = makeTempBase();
    const packed = await packAll(path.join(base, "tarballs"));
    tarballs = [packed.peregrine, packed.native, packed.platform];
    project = new InstallProject(base);
    await project.install([
      ...tarballs.map((t) => t.file),
      `typescript@${workspaceVersion("typescript")}`,
      `@types/node@${workspaceVersion("@types/node")}`,
    ]);
  }, 180_000);

  afterAll(() => {
    if (base !== undefined) fs.rmSync(base, { recursive: true, force: true });
  });

  it("installs without invoking a Rust toolchain, taking every peregrine package from its tarball", () => {
    expect(project.toolchainCalls()).toEqual([]);
    for (const tarball of tarballs) {
      const entry = project.lockEntry(tarball.name);
      expect(entry?.resolved, tarball.name).toMatch(/^file:/);
    }
    expect(fs.readdirSync(path.join(project.dir, "node_modules/@peregrine/native"))).not.toContainEqual(
      expect.stringMatching(/\.node$/),
    );
  });

  it("packs only the whitelisted files", () => {
    for (const tarball of tarballs) {
      const paths = tarball.files.map((f) => f.path);
      const unexpected = paths.filter(
        (p) => !["package.json", "README.md", "LICENSE"].includes(p) && !WHITELIST[tarball.name]?.test(p),
      );
      expect(unexpected, tarball.name).toEqual([]);
      expect(paths, tarball.name).toEqual(expect.arrayContaining(["package.json", "README.md", "LICENSE"]));
    }
    const peregrine = tarballs[0]?.files.map((f) => f.path) ?? [];
    expect(peregrine).toEqual(
      expect.arrayContaining([
        "dist/index.js",
        "dist/index.d.ts",
        "dist/cjs/index.js",
        "dist/cjs/index.d.ts",
        "dist/cjs/package.json",
      ]),
    );
    for (const tarball of tarballs) {
      console.log(
        `${tarball.name}: ${tarball.files.length} files, ${kib(tarball.size)} packed, ${kib(tarball.unpackedSize)} unpacked`,
      );
    }
    const installed = tarballs.map((t) => project.installedSize(t.name)).reduce((a, b) => a + b, 0);
    console.log(`installed size of peregrine and its native packages: ${kib(installed)}`);
  });

  it.each([
    ["ESM", "tsconfig.esm.json", "app.mts", "dist/app.mjs", "hello from esm"],
    ["CommonJS", "tsconfig.cjs.json", "app.cts", "dist/app.cjs", "hello from cjs"],
  ])(
    "type-checks a %s app against the installed types, then serves a request",
    async (_kind, tsconfig, source, built, body) => {
      for (const file of [tsconfig, "tsconfig.base.json", source]) project.addFile(path.join(FIXTURE, file), file);
      await project.typeCheck(tsconfig);
      const app = await project.start(built);
      try {
        const response = await fetch(app.url, { signal: AbortSignal.timeout(10_000) });
        expect(response.status).toBe(200);
        expect(await response.text()).toBe(body);
      } finally {
        expect(await app.stop()).toBe(0);
      }
    },
  );

  // After the apps: it removes the platform package from the project.
  it("without the platform package, names what the loader tried and falls back to the NodeServer", async () => {
    fs.rmSync(path.join(project.dir, "node_modules/@peregrine/native-linux-x64-gnu"), { recursive: true });
    project.addFile(path.join(FIXTURE, "fallback.mjs"), "fallback.mjs");
    const { stdout } = await run(process.execPath, ["fallback.mjs"], { cwd: project.dir, timeout: 20_000 });
    const { named, warnings, served } = JSON.parse(stdout);
    expect(named.code).toBe("PEREGRINE_NATIVE_UNAVAILABLE");
    expect(named.message).toContain("(1) Cannot find module './peregrine.linux-x64-gnu.node'");
    expect(named.message).toContain("(2) Cannot find module '@peregrine/native-linux-x64-gnu'");
    expect(named.message).toContain('the NodeServer (server: "node")');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ code: "PEREGRINE_NATIVE_UNAVAILABLE" });
    expect(served).toBe("served without the addon");
  });

  it("passes publint and arethetypeswrong", async () => {
    for (const tarball of tarballs) {
      const { stdout } = await run(path.join(BIN, "publint"), ["run", tarball.file, "--strict"]);
      expect(stdout, tarball.name).not.toMatch(/warning|error/i);
    }
    for (const tarball of tarballs.slice(0, 2)) {
      // Throws, with the table in the message, when any resolution mode has a problem.
      await run(path.join(BIN, "attw"), [tarball.file, "--format", "ascii"]);
    }
  });
});
