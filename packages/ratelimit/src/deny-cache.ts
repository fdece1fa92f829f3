import type { RateLimitDecision } from './types';

interface Entry {
  cost: number;
  /** `performance.now()` until which the key is refused for `cost` or more. */
  until: number;
  decision: RateLimitDecision;
  /** Server time (ms) of the decision, and the local time it maps to. */
  serverTimeMs: number;
  at: number;
}

/**
 * Refusals remembered in memory: a key the server refused for `cost` units is refused again for
 * that cost or more, with no round trip, until the server's `retryAfterMs` has passed, counted
 * from when the refused call was SENT (so never past the time the server would admit again). It
 * only ever refuses, so it can never admit more than the server would.
 */
export class DenyCache {
  readonly #entries = new Map<string, Entry>();
  constructor(readonly maxKeys: number) {}

  /** A refusal still in force for `cost` on `key`, as the decision to return, or undefined. */
  get(key: string, cost: number): { decision: RateLimitDecision; serverTimeMs: number } | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    const now = performance.now();
    if (now >= entry.until) {
      this.#entries.delete(key);
      return undefined;
    }
    if (cost < entry.cost) return undefined;
    const retryAfterMs = Math.max(1, Math.ceil(entry.until - now));
    return { decision: { ...entry.decision, retryAfterMs }, serverTimeMs: entry.serverTimeMs + (now - entry.at) };
  }

  /** Remembers a refusal of `cost` on `key`, decided for a call sent at `sentAt` (performance.now()). */
  refused(key: string, cost: number, sentAt: number, decision: RateLimitDecision, serverTimeMs: number): void {
    const until = sentAt + decision.retryAfterMs;
    const existing = this.#entries.get(key);
    if (existing && existing.cost <= cost && existing.until > performance.now()) return;
    this.#entries.delete(key);
    this.#entries.set(key, { cost, until, decision, serverTimeMs, at: performance.now() });
    // The oldest refusal goes first when the cache is full.
    if (this.#entries.size > this.maxKeys) this.#entries.delete(this.#entries.keys().next().value!);
  }

  /** Forgets `key` (a refund or reset made room). */
  forget(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
