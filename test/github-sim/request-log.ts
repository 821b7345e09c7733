export interface LoggedRequest {
  time: string;
  method: string;
  path: string;
  /** `METHOD /template` as in GitHub's description, `git` for smart HTTP, or null for an unknown route. */
  route: string | null;
  operationId: string | null;
  status: number;
  fault: string | null;
}

/** Every request the sim answered (REST, uploads, git), so that a test can assert "at most N calls". */
export class RequestLog {
  readonly entries: LoggedRequest[] = [];

  add(entry: Omit<LoggedRequest, 'time'>): void {
    this.entries.push({ time: new Date().toISOString(), ...entry });
  }

  /** Requests per operation id (or route for git), faulted ones included: they were made. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.entries) {
      const key = e.operationId ?? e.route ?? `${e.method} ${e.path}`;
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  }

  /** How many requests went to `operationIdOrRoute` (`checks/update` or `PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}`). */
  count(operationIdOrRoute: string): number {
    return this.entries.filter((e) => e.operationId === operationIdOrRoute || e.route === operationIdOrRoute).length;
  }

  clear(): void {
    this.entries.length = 0;
  }
}
