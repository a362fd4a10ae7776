// An app configured by its deployment: peregrine.json, peregrine.{Environment}.json,
// PEREGRINE_* variables and arguments (docs/configuration.md). Run it with
// `npx peregrine run` (Debug, restarts on changes) or `npx peregrine run -c Release`
// after `npm run build` (docs/cli.md).
import { WebApplication } from "peregrine";

const builder = WebApplication.createBuilder(process.argv.slice(2));
const greeting = String(builder.configuration.get("greeting") ?? "Hello");
const app = builder.build();

app.mapGet("/", () => greeting);
if (app.environment.isDevelopment()) {
  // Only in Development: the server settings the sources resolved to, and where each came from.
  app.mapGet("/config", () =>
    builder.configuration
      .getSection("server")
      .entries()
      .map(({ key, value, source }) => ({ key, value, from: source.name })),
  );
}

await app.run();
