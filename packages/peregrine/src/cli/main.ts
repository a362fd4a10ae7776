#!/usr/bin/env node
// The `peregrine` command: `peregrine run` (this folder) and `peregrine host` (src/host/).
import { PeregrineError } from "../errors.js";
import { runCommand } from "./run.js";

const USAGE = `Usage: peregrine <command> [options]

Commands:
  run     run an app, with a launch profile from launchSettings.json (docs/cli.md)
  host    serve an app from a child process, as ASP.NET Core's module does (docs/hosting.md)

Run "peregrine <command> --help" for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return runCommand(rest);
    case "host": {
      const { hostCommand } = await import("../host/command.js");
      return hostCommand(rest);
    }
    case undefined:
    case "-h":
    case "--help":
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`peregrine: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Errors a user can meet print as "CODE: message"; anything else with its stack.
    const text =
      error instanceof PeregrineError
        ? `${error.code}: ${error.message}`
        : error instanceof Error
          ? error.stack
          : error;
    process.stderr.write(`peregrine: ${String(text)}\n`);
    process.exitCode = 1;
  },
);
