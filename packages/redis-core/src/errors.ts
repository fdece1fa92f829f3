const MARKER = Symbol.for('x.redis.error');

/**
 * Base class of every error thrown by the @x Redis primitives.
 *
 * `code` is a stable string (`LOCK_NOT_HELD`, `INVALID_ARGUMENT`, ...) to branch on; `isInstance`
 * works across two copies of the package, where `instanceof` does not.
 *
 * @example
 * try { await lock.acquire({ timeoutMs: 100 }); }
 * catch (e) { if (XRedisError.isInstance(e) && e.code === 'LOCK_TIMEOUT') retryLater(); }
 */
export class XRedisError extends Error {
  readonly code: string;
  private readonly [MARKER] = true;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** True for an `XRedisError` from any copy of this package. */
  static isInstance(error: unknown): error is XRedisError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}

/**
 * An argument was rejected before anything was sent to Redis (or by a script before its first
 * write). Nothing was changed.
 *
 * @example
 * new Lock(client, '', {}); // throws InvalidArgumentError: name must be a non-empty string
 */
export class InvalidArgumentError extends XRedisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** Whether `error` carries the same `code` as `like` (a primitive's error built for comparison). */
export function sameCode(error: unknown, like: Error): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === (like as { code?: unknown }).code;
}
