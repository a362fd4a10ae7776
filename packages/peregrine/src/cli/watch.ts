import fs from "node:fs";
import path from "node:path";

/** Folders whose changes never restart the app: dependencies, build output, VCS data. */
const IGNORED = new Set(["node_modules", "dist", ".git"]);

/** Milliseconds of quiet after a change before the app restarts, so a save of many files restarts once. */
export const RESTART_DEBOUNCE_MS = 200;

/**
 * Watches the app's folder and calls `onChange` once per burst of changes, with the first
 * changed path (relative). Returns a function that stops watching.
 */
export function watchAppFolder(folder: string, onChange: (file: string) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let first: string | undefined;
  const watcher = fs.watch(folder, { recursive: true }, (_event, name) => {
    const file = name === null ? "" : name.toString();
    if (file.split(path.sep).some((segment) => IGNORED.has(segment))) return;
    first ??= file;
    clearTimeout(timer);
    timer = setTimeout(() => {
      const changed = first as string;
      first = undefined;
      onChange(changed);
    }, RESTART_DEBOUNCE_MS);
  });
  // A watcher error (the folder removed) ends watching; the running app is left alone.
  watcher.on("error", () => watcher.close());
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
