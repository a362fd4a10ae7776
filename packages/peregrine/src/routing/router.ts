import type { HttpContext, RouteValues } from "../http/context.js";
import { comparePrecedence, matchRouteTemplate, parseRouteTemplate, type RouteTemplate } from "./route-template.js";

/** An endpoint handler. Its return value becomes the response body (see README). */
export type EndpointHandler = (ctx: HttpContext) => unknown;

export interface RouteEndpoint {
  /** Upper-case methods, or null for any method. */
  readonly methods: readonly string[] | null;
  readonly template: RouteTemplate;
  readonly handler: EndpointHandler;
}

export type RouteMatch =
  | { kind: "endpoint"; endpoint: RouteEndpoint; values: RouteValues | undefined }
  | { kind: "methodNotAllowed"; allow: string[] }
  | { kind: "none" };

const NONE: RouteMatch = { kind: "none" };

/** A literal route and the answer to a match of it, made once: matching allocates nothing. */
interface StaticRoute {
  readonly endpoint: RouteEndpoint;
  readonly match: RouteMatch;
}

function allows(endpoint: RouteEndpoint, method: string): boolean {
  const methods = endpoint.methods;
  // GET routes answer HEAD too; the server sends the headers without the body.
  return methods === null || methods.includes(method) || (method === "HEAD" && methods.includes("GET"));
}

/**
 * Matches requests to endpoints. Templates made only of literals are found with one
 * map lookup; the others are tried in precedence order.
 */
export class Router {
  readonly #static = new Map<string, StaticRoute[]>();
  readonly #dynamic: RouteEndpoint[] = [];

  get size(): number {
    let n = this.#dynamic.length;
    for (const list of this.#static.values()) n += list.length;
    return n;
  }

  add(methods: readonly string[] | null, template: string, handler: EndpointHandler): RouteEndpoint {
    const endpoint: RouteEndpoint = {
      methods: methods === null ? null : methods.map((m) => m.toUpperCase()),
      template: parseRouteTemplate(template),
      handler,
    };
    const key = endpoint.template.staticPath;
    if (key !== undefined) {
      const route: StaticRoute = { endpoint, match: Object.freeze({ kind: "endpoint", endpoint, values: undefined }) };
      const list = this.#static.get(key);
      if (list === undefined) this.#static.set(key, [route]);
      else list.push(route);
    } else {
      this.#dynamic.push(endpoint);
      // Stable sort keeps registration order between equals.
      this.#dynamic.sort((a, b) => comparePrecedence(a.template, b.template));
    }
    return endpoint;
  }

  match(method: string, path: string): RouteMatch {
    let allow: string[] | undefined;
    let key = path.length > 1 && path.charCodeAt(path.length - 1) === 47 ? path.slice(0, -1) : path;
    let list = this.#static.get(key);
    if (list === undefined) {
      key = key.toLowerCase();
      list = this.#static.get(key);
    }
    if (list !== undefined) {
      for (const route of list) {
        if (allows(route.endpoint, method)) return route.match;
      }
      allow = list.flatMap((r) => r.endpoint.methods ?? []);
    }
    for (const endpoint of this.#dynamic) {
      const values = matchRouteTemplate(endpoint.template, path);
      if (values === undefined) continue;
      if (allows(endpoint, method)) return { kind: "endpoint", endpoint, values };
      (allow ??= []).push(...(endpoint.methods ?? []));
    }
    if (allow !== undefined) return { kind: "methodNotAllowed", allow: [...new Set(allow)] };
    return NONE;
  }
}
