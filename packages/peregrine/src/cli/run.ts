import path from "node:path";
import { parseArgs } from "node:util";
import { ErrorCodes, InvalidOptionError, PeregrineError } from "../errors.js";
import { type AppLaunch, AppProcess } from "./app-process.js";
import { appFolderOf, type BuildConfiguration, resolveEntry } from "./entry.js";
import { type LaunchProfile, selectLaunchProfile } from "./launch-settings.js";
import { watchAppFolder } from "./watch.js";

export const RUN_USAGE = `Usage: peregrine run [entry] [options] [-- app arguments]

Runs the app in a child process, with the settings of a launch profile.

  entry                        the app's entry file, or its folder (default: the current folder)
  --launch-profile <name>      the profile of launchSettings.json to use (default: its first "Project" profile)
  --no-launch-profile          ignore launchSettings.json
  -c, --configuration <name>   Debug (TypeScript, source maps, restart on changes) or Release (built JavaScript)
  --environment <name>         PEREGRINE_ENVIRONMENT for the app
  --urls <urls>                PEREGRINE_URLS for the app, ";"-separated
  --server <native|node>       PEREGRINE_SERVER for the app
  -h, --help                   show this help
`;

const FLAGS = {
  "launch-profile": { type: "string" },
  "no-launch-profile": { type: "boolean" },
  configuration: { type: "string", short: "c" },
  environment: { type: "string" },
  urls: { type: "string" },
  server: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Messages of `peregrine run` itself go to stderr, so stdout is the app's. */
function say(message: string): void {
  process.stderr.write(`peregrine: ${message}\n`);
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  const match = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
  if (match === undefined) {
    throw new InvalidOptionError(`--${flag}`, value, `use ${allowed.map((a) => JSON.stringify(a)).join(" or ")}`);
  }
  return match;
}

/** The variables the app gets: the CLI's own, then the profile's, then the flags'. */
function appEnvironment(
  profile: LaunchProfile | undefined,
  flags: { urls?: string | undefined; environment?: string | undefined; server?: string | undefined },
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...profile?.environmentVariables };
  const urls = flags.urls ?? profile?.applicationUrl;
  if (urls !== undefined) env.PEREGRINE_URLS = urls;
  if (flags.environment !== undefined) env.PEREGRINE_ENVIRONMENT = flags.environment;
  if (flags.server !== undefined) env.PEREGRINE_SERVER = flags.server;
  return env;
}

/**
 * Runs the app until it exits, or until SIGINT or SIGTERM, which it forwards once (a
 * second one kills the app). In Debug, a change in the app's folder restarts the app, and
 * an app that exits waits for the next change.
 */
function supervise(launch: AppLaunch): Promise<number> {
  const watch = launch.configuration === "Debug";
  let app = new AppProcess(launch);
  let stopping = false;
  /** The app being stopped for a restart: its exit is expected. */
  let replacing: AppProcess | undefined;
  let restarting: Promise<void> = Promise.resolve();
  return new Promise((resolve) => {
    const finish = (code: number) => {
      stopWatching?.();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.off("exit", killApp);
      resolve(code);
    };
    const follow = (current: AppProcess) => {
      void current.exited.then((code) => {
        if (current !== app || current === replacing) return;
        if (watch && !stopping) {
          say(`the app exited with code ${code}; waiting for a file to change`);
          return;
        }
        finish(code);
      });
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        app.signal("SIGKILL");
        return;
      }
      stopping = true;
      app.signal(signal);
    };
    // The app has its own process group: it must not outlive `peregrine run`.
    const killApp = () => app.signal("SIGKILL");
    const stopWatching = watch
      ? watchAppFolder(launch.appFolder, (file) => {
          restarting = restarting.then(async () => {
            if (stopping) return;
            say(`${file} changed; restarting the app`);
            replacing = app;
            const code = await app.stop();
            replacing = undefined;
            // A signal that came during the restart ends the run instead.
            if (stopping) return finish(code);
            app = new AppProcess(launch);
            follow(app);
          });
        })
      : undefined;
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("exit", killApp);
    follow(app);
  });
}

/** An "OutOfProcess" profile: `peregrine host` in this process, with the profile's variables for the app. */
async function runBehindHost(launch: AppLaunch, profile: LaunchProfile, urls: string | undefined): Promise<number> {
  if (urls === undefined) {
    throw new PeregrineError(
      ErrorCodes.INVALID_OPTION,
      `profile ${JSON.stringify(profile.name)} is OutOfProcess: it needs an applicationUrl (or --urls) for the host to listen on`,
    );
  }
  const { hostCommand } = await import("../host/command.js");
  // The host starts the app with its own environment: hand the profile's variables down.
  for (const [name, value] of Object.entries(launch.env)) {
    if (name !== "PEREGRINE_URLS" && value !== undefined) process.env[name] = value;
  }
  const environment = launch.env.PEREGRINE_ENVIRONMENT;
  return hostCommand([
    "--app",
    launch.file,
    "--urls",
    urls,
    ...(environment === undefined ? [] : ["--environment", environment]),
  ]);
}

/** `peregrine run [entry] [options] [-- app arguments]`; resolves with the exit code. */
export async function runCommand(argv: string[]): Promise<number> {
  const split = argv.indexOf("--");
  const own = split < 0 ? argv : argv.slice(0, split);
  const appArgs = split < 0 ? [] : argv.slice(split + 1);
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof FLAGS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: own, options: FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new PeregrineError(ErrorCodes.INVALID_OPTION, `${(error as Error).message}\n\n${RUN_USAGE}`, {
      cause: error,
    });
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  if (positionals.length > 1) {
    throw new PeregrineError(
      ErrorCodes.INVALID_OPTION,
      `peregrine run takes one entry, not ${positionals.length}: put the app's own arguments after --`,
    );
  }
  if (values["launch-profile"] !== undefined && values["no-launch-profile"] === true) {
    throw new PeregrineError(ErrorCodes.INVALID_OPTION, "--launch-profile and --no-launch-profile exclude each other");
  }
  const configuration = oneOf<BuildConfiguration>("configuration", values.configuration, ["Debug", "Release"]);
  const server = oneOf("server", values.server, ["native", "node"]);
  const cwd = process.cwd();
  const entryArg = positionals[0];
  const appFolder = appFolderOf(cwd, entryArg);
  const profile =
    values["no-launch-profile"] === true ? undefined : selectLaunchProfile(appFolder, values["launch-profile"]);
  // The host starts the app with node as it is: an OutOfProcess profile runs the built JavaScript.
  const outOfProcess = profile?.commandName === "OutOfProcess";
  const entry = resolveEntry(cwd, entryArg, configuration ?? (outOfProcess ? "Release" : undefined));
  const urls = values.urls ?? profile?.applicationUrl;
  const launch: AppLaunch = {
    ...entry,
    env: appEnvironment(profile, { urls, environment: values.environment, server }),
    args: appArgs,
  };
  say(
    `running ${path.relative(cwd, entry.file) || entry.file} (${entry.configuration})${
      profile === undefined ? "" : ` with launch profile ${JSON.stringify(profile.name)} (${profile.commandName})`
    }`,
  );
  if (profile !== undefined && outOfProcess) return runBehindHost(launch, profile, urls);
  return supervise(launch);
}
