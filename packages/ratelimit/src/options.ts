import { InvalidArgumentError, assertInteger, MAX_DURATION_MS } from '@x/redis-core';
import { MAX_LIMIT, MAX_LIMITS } from './scripts';
import type { RateLimit, RateLimitAlgorithm } from './types';

const ALGORITHMS: readonly RateLimitAlgorithm[] = ['gcra', 'sliding-window', 'fixed-window', 'token-bucket'];

/** Short names of the algorithms in key names. */
const KEY_TAG: Record<RateLimitAlgorithm, string> = {
  gcra: 'gcra',
  'token-bucket': 'tb',
  'fixed-window': 'fw',
  'sliding-window': 'sw',
};

/** Checks the algorithm name. */
export function assertAlgorithm(value: unknown): RateLimitAlgorithm {
  if (typeof value !== 'string' || !ALGORITHMS.includes(value as RateLimitAlgorithm)) {
    throw new InvalidArgumentError(`algorithm must be one of ${ALGORITHMS.join(', ')}, got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`);
  }
  return value as RateLimitAlgorithm;
}

/** Checks the limits: 1 to 16 of them, each a limit and a window, no two alike. Returns a frozen copy. */
export function assertLimits(value: unknown): readonly RateLimit[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_LIMITS) {
    throw new InvalidArgumentError(`limits must be an array of 1 to ${MAX_LIMITS} limits`);
  }
  const seen = new Set<string>();
  return Object.freeze(
    value.map((item: unknown, i) => {
      if (typeof item !== 'object' || item === null) throw new InvalidArgumentError(`limits[${i}] must be an object { limit, windowMs }`);
      const { limit, windowMs } = item as Partial<RateLimit>;
      const checked = Object.freeze({
        limit: assertInteger(`limits[${i}].limit`, limit, 1, MAX_LIMIT),
        windowMs: assertInteger(`limits[${i}].windowMs`, windowMs, 1, MAX_DURATION_MS),
      });
      const id = `${checked.limit}/${checked.windowMs}`;
      // Two equal limits would share one key and charge it twice.
      if (seen.has(id)) throw new InvalidArgumentError(`limits[${i}] repeats ${checked.limit} per ${checked.windowMs} ms`);
      seen.add(id);
      return checked;
    }),
  );
}

/** The key suffix of each limit: algorithm, limit and window, so a changed configuration starts afresh. */
export function limitSuffixes(algorithm: RateLimitAlgorithm, limits: readonly RateLimit[]): string[] {
  return limits.map((l) => `${KEY_TAG[algorithm]}:${l.limit}:${l.windowMs}`);
}

/** The smallest limit: the largest cost that could ever be admitted. */
export function smallestLimit(limits: readonly RateLimit[]): number {
  return Math.min(...limits.map((l) => l.limit));
}
