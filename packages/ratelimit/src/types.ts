/**
 * The algorithm a limiter counts with. All four never admit more than their limit allows, on the
 * server's clock:
 *
 * - `gcra` (default): the generic cell rate algorithm; a burst of `limit`, then one unit every
 *   `windowMs / limit`. One integer per key.
 * - `token-bucket`: a bucket of `limit` tokens, one token back every `windowMs / limit`. The same
 *   admissions as `gcra`, stored as tokens.
 * - `fixed-window`: at most `limit` per window `[k·windowMs, (k+1)·windowMs)` of server time.
 * - `sliding-window`: at most `limit` in ANY `windowMs` of server time (an exact log of admissions,
 *   at most `limit` entries per key).
 *
 * @example
 * new RateLimiter(client, 'api', { limits: [{ limit: 100, windowMs: 60_000 }], algorithm: 'sliding-window' });
 */
export type RateLimitAlgorithm = 'gcra' | 'sliding-window' | 'fixed-window' | 'token-bucket';

/**
 * One rate limit: `limit` units per `windowMs`.
 *
 * @example
 * const perSecond: RateLimit = { limit: 10, windowMs: 1_000 };
 */
export interface RateLimit {
  /** Units admitted per window: an integer from 1 to 1,000,000,000. */
  limit: number;
  /** The window in milliseconds: an integer from 1 to 2^31 − 1. */
  windowMs: number;
}

/**
 * The state of one limit after a call.
 *
 * @example
 * for (const p of decision.policies) console.log(`${p.remaining}/${p.limit} per ${p.windowMs} ms`);
 */
export interface RateLimitPolicyState extends RateLimit {
  /** Units of cost 1 this limit would admit now (after this call's charge, when it was charged). */
  remaining: number;
  /** Server time (epoch ms) at which this limit is back to full if nothing more is charged. */
  resetAt: number;
}

/**
 * What `limit`, `peek`, `refund` and `waitFor` return. `remaining`, `limit`, `windowMs` and
 * `resetAt` are those of the tightest limit: the one that refused with the longest wait, or, when
 * every limit admitted, the one with the fewest units left.
 *
 * @example
 * const { allowed, remaining, resetAt, retryAfterMs } = await limiter.limit('user:42');
 */
export interface RateLimitDecision {
  /** True when the call was admitted (and charged, for `limit` and `waitFor`). */
  allowed: boolean;
  remaining: number;
  limit: number;
  windowMs: number;
  /** Server time (epoch ms) at which the tightest limit is back to full. */
  resetAt: number;
  /** 0 when admitted; else how long until the same cost would be admitted on every limit. */
  retryAfterMs: number;
  /** Every limit, in the order they were configured. */
  policies: readonly RateLimitPolicyState[];
}
