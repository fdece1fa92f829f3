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
    // One marker per class of the chain, by name: `LockTimeoutError.isInstance(e)` is true for a
    // LockTimeoutError (or a subclass) from any copy of its package, and false for other errors.
    for (let c: unknown = new.target; typeof c === 'function' && c !== XRedisError && c !== Error; c = Object.getPrototypeOf(c)) {
      Object.defineProperty(this, classMarker((c as { name: string }).name), { value: true });
    }
  }

  /**
   * True for an error of this class (or a subclass) from any copy of its package, where
   * `instanceof` fails across copies. `XRedisError.isInstance(e)` is true for every error of ours.
   *
   * @example
   * if (LockNotHeldError.isInstance(e)) reportLostLease(e); // false for a LockTimeoutError
   */
  static isInstance<C extends abstract new (...args: any[]) => XRedisError>(this: C, error: unknown): error is InstanceType<C> {
    if (typeof error !== 'object' || error === null || (error as Record<symbol, unknown>)[MARKER] !== true) return false;
    return (this as unknown) === XRedisError || (error as Record<symbol, unknown>)[classMarker(this.name)] === true;
  }
}

function classMarker(name: string): symbol {
  return Symbol.for(`x.redis.error:${name}`);
}

/**
 * Whether `error` is one of ours with the given `code`.
 *
 * @example
 * if (hasCode(error, 'LOCK_TIMEOUT')) return null;
 */
export function hasCode(error: unknown, code: string): boolean {
  return XRedisError.isInstance(error) && error.code === code;
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
