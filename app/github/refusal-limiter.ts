/** How long a user without permission waits for a second reply on one pull request or issue. */
export const REFUSAL_EVERY_MS = 10 * 60 * 1000;

/**
 * At most one reply per pull request or issue and user in a window (10 minutes): what keeps a
 * user without permission from making the app write a comment for each of theirs. In memory: a
 * restart forgets it, which costs at most one more reply each.
 */
export class RefusalLimiter {
  /** The time of the last reply, by key; in the order they were given, so the oldest go first. */
  private readonly last = new Map<string, number>();

  constructor(
    private readonly windowMs = REFUSAL_EVERY_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `user` may be answered on `issueNumber` of `repoId` now; a yes counts as the reply given. */
  allow(repoId: number, issueNumber: number, user: string): boolean {
    const now = this.now();
    for (const [key, at] of this.last) {
      if (now - at < this.windowMs) break;
      this.last.delete(key);
    }
    const key = `${repoId}#${issueNumber}@${user.toLowerCase()}`;
    if (this.last.has(key)) return false;
    this.last.set(key, now);
    return true;
  }
}
