import { ErrorCodes, PeregrineError } from "../errors.js";
import type { RouteValues } from "../http/context.js";

/**
 * Route templates, with ASP.NET Core's syntax:
 *
 * - literals match case-insensitively: `/users`
 * - `{id}` captures one segment; `{id?}` may be missing; `{id=7}` has a default
 * - `{*rest}` (or `{**rest}`) captures the rest of the path, slashes included
 * - constraints follow a colon and may repeat: `{id:int}`, `{name:alpha:maxlength(8)}`;
 *   available: int, bool, guid, alpha, min(n), max(n), range(a,b), length(n) or
 *   length(a,b), minlength(n), maxlength(n), regex(expr)
 *
 * A parameter fills its whole segment.
 */
export type Constraint = (value: string) => boolean;

export type TemplateSegment =
  | { kind: "literal"; text: string; lower: string }
  | {
      kind: "parameter";
      name: string;
      optional: boolean;
      catchAll: boolean;
      defaultValue: string | undefined;
      constraints: Constraint[];
    };

export interface RouteTemplate {
  readonly text: string;
  readonly segments: readonly TemplateSegment[];
  /** Lower sorts first: literals beat constrained parameters beat plain ones. */
  readonly precedence: readonly number[];
  /** The lower-cased path when the template has only literals, else undefined. */
  readonly staticPath: string | undefined;
}

const INT = /^-?\d+$/;
const GUID_PLAIN = /^\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$/i;
const ALPHA = /^[a-z]+$/i;

function invalid(template: string, why: string): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_ROUTE, `route template "${template}" is invalid: ${why}`);
}

function numbers(template: string, name: string, args: string | undefined, count: number[]): number[] {
  const values = (args ?? "").split(",").map((a) => Number(a.trim()));
  if (!count.includes(values.length) || values.some((v) => !Number.isFinite(v))) {
    throw invalid(template, `constraint "${name}" needs ${count.join(" or ")} number(s)`);
  }
  return values;
}

function parseConstraint(template: string, spec: string): Constraint {
  const open = spec.indexOf("(");
  const name = open < 0 ? spec : spec.slice(0, open);
  const args = open < 0 ? undefined : spec.slice(open + 1, spec.endsWith(")") ? -1 : undefined);
  switch (name) {
    case "int":
      return (v) => INT.test(v) && Number.isSafeInteger(Number(v));
    case "bool":
      return (v) => /^(true|false)$/i.test(v);
    case "guid":
      return (v) => GUID_PLAIN.test(v);
    case "alpha":
      return (v) => ALPHA.test(v);
    case "min": {
      const [min] = numbers(template, name, args, [1]) as [number];
      return (v) => INT.test(v) && Number(v) >= min;
    }
    case "max": {
      const [max] = numbers(template, name, args, [1]) as [number];
      return (v) => INT.test(v) && Number(v) <= max;
    }
    case "range": {
      const [min, max] = numbers(template, name, args, [2]) as [number, number];
      return (v) => INT.test(v) && Number(v) >= min && Number(v) <= max;
    }
    case "length": {
      const n = numbers(template, name, args, [1, 2]);
      const [min, max] = n.length === 1 ? [n[0] as number, n[0] as number] : (n as [number, number]);
      return (v) => v.length >= min && v.length <= max;
    }
    case "minlength": {
      const [min] = numbers(template, name, args, [1]) as [number];
      return (v) => v.length >= min;
    }
    case "maxlength": {
      const [max] = numbers(template, name, args, [1]) as [number];
      return (v) => v.length <= max;
    }
    case "regex": {
      if (args === undefined) throw invalid(template, "constraint regex needs an expression");
      let re: RegExp;
      try {
        re = new RegExp(`^(?:${args})$`, "i");
      } catch (error) {
        throw invalid(template, `regex(${args}) does not compile: ${(error as Error).message}`);
      }
      return (v) => re.test(v);
    }
    default:
      throw invalid(template, `unknown constraint "${name}"`);
  }
}

function parseParameter(template: string, body: string, last: boolean): TemplateSegment {
  let rest = body;
  let catchAll = false;
  if (rest.startsWith("**")) {
    catchAll = true;
    rest = rest.slice(2);
  } else if (rest.startsWith("*")) {
    catchAll = true;
    rest = rest.slice(1);
  }
  let defaultValue: string | undefined;
  const eq = rest.indexOf("=");
  if (eq >= 0) {
    defaultValue = rest.slice(eq + 1);
    rest = rest.slice(0, eq);
  }
  let optional = false;
  if (rest.endsWith("?")) {
    optional = true;
    rest = rest.slice(0, -1);
  }
  // Split on colons outside parentheses: regex(a:b) keeps its colon.
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === ":" && depth === 0) {
      parts.push(rest.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(rest.slice(start));
  const name = parts[0] ?? "";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw invalid(template, `"${name}" is not a valid parameter name`);
  }
  if (catchAll && !last) throw invalid(template, "a catch-all parameter must be the last segment");
  if (optional && defaultValue !== undefined) {
    throw invalid(template, `parameter "${name}" cannot be both optional and have a default`);
  }
  return {
    kind: "parameter",
    name,
    optional: optional || catchAll || defaultValue !== undefined,
    catchAll,
    defaultValue,
    constraints: parts.slice(1).map((c) => parseConstraint(template, c)),
  };
}

export function parseRouteTemplate(text: string): RouteTemplate {
  if (text.includes("?") && !text.includes("{")) throw invalid(text, "a template cannot contain a query string");
  const trimmed = text.replace(/^~?\//, "").replace(/\/$/, "");
  const raw = trimmed === "" ? [] : trimmed.split("/");
  const segments: TemplateSegment[] = [];
  const names = new Set<string>();
  raw.forEach((segment, i) => {
    if (segment === "") throw invalid(text, "empty segment (two slashes in a row)");
    if (segment.startsWith("{") && segment.endsWith("}")) {
      const parameter = parseParameter(text, segment.slice(1, -1), i === raw.length - 1);
      if (parameter.kind === "parameter") {
        if (names.has(parameter.name)) throw invalid(text, `parameter "${parameter.name}" appears twice`);
        names.add(parameter.name);
      }
      segments.push(parameter);
    } else if (segment.includes("{") || segment.includes("}")) {
      throw invalid(text, `segment "${segment}" mixes text and parameters; a parameter must fill its segment`);
    } else {
      segments.push({ kind: "literal", text: segment, lower: segment.toLowerCase() });
    }
  });
  segments.forEach((segment, i) => {
    if (segment.kind === "parameter" && segment.optional && !segment.catchAll) {
      const after = segments.slice(i + 1);
      if (after.some((s) => s.kind === "literal" || !s.optional)) {
        throw invalid(text, `optional parameter "${segment.name}" must be followed only by optional parameters`);
      }
    }
  });
  const precedence = segments.map((s) => {
    if (s.kind === "literal") return 1;
    if (s.catchAll) return 5;
    if (s.optional) return 4;
    return s.constraints.length > 0 ? 2 : 3;
  });
  const isStatic = segments.every((s) => s.kind === "literal");
  return {
    text,
    segments,
    precedence,
    staticPath: isStatic ? `/${segments.map((s) => (s.kind === "literal" ? s.lower : "")).join("/")}` : undefined,
  };
}

/** Compares two templates for matching order. */
export function comparePrecedence(a: RouteTemplate, b: RouteTemplate): number {
  const n = Math.min(a.precedence.length, b.precedence.length);
  for (let i = 0; i < n; i++) {
    const d = (a.precedence[i] as number) - (b.precedence[i] as number);
    if (d !== 0) return d;
  }
  // More segments is more specific.
  return b.precedence.length - a.precedence.length;
}

/**
 * Matches a path ("/users/42", already percent-decoded except %2F) against a template.
 * Returns the captured values, or undefined.
 */
export function matchRouteTemplate(template: RouteTemplate, path: string): RouteValues | undefined {
  const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(1, -1) : path.slice(1);
  const parts = trimmed === "" ? [] : trimmed.split("/");
  const values: RouteValues = {};
  const segments = template.segments;
  let i = 0;
  for (; i < segments.length; i++) {
    const segment = segments[i] as TemplateSegment;
    if (segment.kind === "literal") {
      const part = parts[i];
      if (part === undefined || part.toLowerCase() !== segment.lower) return undefined;
      continue;
    }
    if (segment.catchAll) {
      const rest = parts.slice(i).join("/");
      if (rest === "") {
        if (segment.defaultValue !== undefined) values[segment.name] = segment.defaultValue;
      } else {
        if (!segment.constraints.every((c) => c(rest))) return undefined;
        values[segment.name] = rest;
      }
      return values;
    }
    const part = parts[i];
    if (part === undefined || part === "") {
      if (!segment.optional) return undefined;
      if (segment.defaultValue !== undefined) values[segment.name] = segment.defaultValue;
      continue;
    }
    if (!segment.constraints.every((c) => c(part))) return undefined;
    values[segment.name] = part;
  }
  return parts.length > i ? undefined : values;
}
