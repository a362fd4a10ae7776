// A logger that keeps every event, for tests that check what the server reports.
import type { Logger } from "peregrine";

export interface LoggedEvent {
  level: string;
  fields: Record<string, unknown>;
  message?: string;
}

export function capturingLogger(): Logger & { events: LoggedEvent[] } {
  const events: LoggedEvent[] = [];
  const at = (level: string) => (fields: object, message?: string) => {
    events.push({ level, fields: fields as Record<string, unknown>, ...(message !== undefined ? { message } : {}) });
  };
  return { events, error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}

/** The "Request rejected" events with this reason code. */
export function rejections(logger: { events: LoggedEvent[] }, reason?: string): LoggedEvent[] {
  return logger.events.filter(
    (e) => e.message === "Request rejected" && (reason === undefined || e.fields.reason === reason),
  );
}
