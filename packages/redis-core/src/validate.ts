import { InvalidArgumentError } from './errors';

// With the `u` flag a surrogate pair is one code point, so only a lone surrogate is in `Cs`.
const LONE_SURROGATE = /\p{Cs}/u;

/** Longest resource name accepted, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 512;

/**
 * Checks that `value` is a safe integer in `[min, max]` and returns it.
 *
 * @example
 * const permits = assertInteger('permits', options.permits ?? 1, 1, limit);
 */
export function assertInteger(label: string, value: unknown, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${label} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

/** Largest duration accepted anywhere: what a Node timer can hold. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * Checks a duration in milliseconds (an integer from `min`, default 1, to 2^31 − 1).
 *
 * @example
 * const ttlMs = assertDurationMs('ttlMs', options.ttlMs ?? 30_000, 100);
 */
export function assertDurationMs(label: string, value: unknown, min = 1): number {
  return assertInteger(label, value, min, MAX_DURATION_MS);
}

/**
 * Checks a wait timeout: `Infinity`, or a duration from 0 ms.
 *
 * @example
 * const timeoutMs = assertTimeoutMs(options.timeoutMs ?? Infinity);
 */
export function assertTimeoutMs(value: unknown, label = 'timeoutMs'): number {
  if (value === Infinity) return value;
  return assertInteger(label, value, 0, MAX_DURATION_MS);
}

/**
 * Checks a resource name: a non-empty, well-formed UTF-16 string of at most 512 UTF-8 bytes.
 *
 * A lone surrogate (`'\uD800'`) is refused: UTF-8 encoding turns every lone surrogate into
 * U+FFFD, so `'\uD800'` and `'\uDC00'` would name the same keys.
 *
 * @example
 * assertName('name', 'orders:42');
 */
export function assertName(label: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`${label} must be a non-empty string, got ${describe(value)}`);
  }
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidArgumentError(`${label} must be well-formed UTF-16 (no lone surrogates), got ${describe(value)}`);
  }
  if (Buffer.byteLength(value, 'utf8') > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(`${label} must be at most ${MAX_NAME_BYTES} bytes long`);
  }
  return value;
}

/**
 * Checks a key prefix: a non-empty string without `{` or `}` (a brace would move the hash tag).
 *
 * @example
 * assertPrefix('x');
 */
export function assertPrefix(value: unknown): string {
  assertName('prefix', value);
  if (/[{}]/.test(value as string)) throw new InvalidArgumentError('prefix must not contain { or }');
  return value as string;
}

/**
 * Checks that `value` is an AbortSignal or undefined.
 *
 * @example
 * assertSignal(options.signal);
 */
export function assertSignal(value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw new InvalidArgumentError(`signal must be an AbortSignal, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return value === null ? 'null' : typeof value;
}
