/** The environment an app runs in when PEREGRINE_ENVIRONMENT and the options name none. */
export const DEFAULT_ENVIRONMENT = "Production";

/**
 * Where the app runs: its environment's name (Development, Staging, Production or any
 * other) and its content root, the folder peregrine.json is read from. ASP.NET Core's
 * IWebHostEnvironment.
 */
export class HostEnvironment {
  readonly name: string;
  /** An absolute path. */
  readonly contentRootPath: string;

  constructor(name: string, contentRootPath: string) {
    this.name = name;
    this.contentRootPath = contentRootPath;
  }

  /** Compares case-insensitively, as ASP.NET Core does. */
  isEnvironment(name: string): boolean {
    return this.name.toLowerCase() === name.toLowerCase();
  }

  isDevelopment(): boolean {
    return this.isEnvironment("Development");
  }

  isStaging(): boolean {
    return this.isEnvironment("Staging");
  }

  isProduction(): boolean {
    return this.isEnvironment("Production");
  }
}
