import { XRedisError } from './errors';

const UNAVAILABLE = 'REDIS_UNAVAILABLE';

/**
 * A call failed on a transient server fault (a connection reset or refused, a timeout, `LOADING`,
 * `TRYAGAIN`, a failover in progress, ...); `cause` is the fault as the client reported it.
 * Whether the script ran is unknown, and every script is safe to send again. Waiting calls
 * never throw it (they retry until their own deadline); non-waiting calls fail fast with it.
 *
 * @example
 * try { await lock.tryAcquire(); }
 * catch (e) { if (RedisUnavailableError.isInstance(e)) return retryLater(e.cause); throw e; }
 */
export class RedisUnavailableError extends XRedisError {
  constructor(what: string, cause: unknown) {
    super(UNAVAILABLE, `${what} failed on a transient server fault: ${messageOf(cause)}`, { cause });
  }
}

/** Server replies that say "not now": the same call can succeed once the server is back. */
const TRANSIENT_REPLY = /^(?:LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS|MOVED|ASK|UNBLOCKED)\b/;

/** node-redis errors of a connection that is down, reconnecting, or slow to answer. */
const TRANSIENT_CLASSES = new Set([
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'ClientOfflineError',
  'TimeoutError',
  'SocketTimeoutDuringMaintenanceError',
  'CommandTimeoutDuringMaintenanceError',
  'RootNodesUnavailableError',
  // ioredis: a command retried too often while reconnecting.
  'MaxRetriesPerRequestError',
]);

/** Errors that mean "closed": transient only while the client itself is still open (reconnecting). */
const CLOSED_CLASSES = new Set(['ClientClosedError', 'DisconnectsClientError']);

const TRANSIENT_MESSAGES = [
  /^Socket closed unexpectedly/,
  /^Connection timeout/,
  /^The client is offline/,
  /^All the root nodes are unavailable/,
  /^ERR max number of clients reached/,
  /^Connection is closed\./, // ioredis, mid-command disconnect
];

const TRANSIENT_SYSCALL_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTCONN',
  'EAI_AGAIN',
]);

/**
 * Whether `error` is a transient server fault: one the same call may get past by being sent again
 * a little later (the contract of specs/faults.md). Connection resets and refusals, socket closes
 * and timeouts, `ERR max number of clients reached`, and the replies `LOADING`, `BUSY`,
 * `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`, `NOREPLICAS`, `MOVED`, `ASK`, `UNBLOCKED`
 * are; a typed error of a primitive, bad input, `NOSCRIPT`, `WRONGTYPE`, `OOM` or `NOPERM` are
 * not. A "client closed" error is transient only while `client` is still open (a cluster node
 * being replaced, a reconnect): once the caller closed its client, retrying cannot help.
 *
 * @example
 * try { await script.run(client, keys, args); }
 * catch (e) { if (!isTransient(e, client)) throw e; await sleep(backoff.next()); }
 */
export function isTransient(error: unknown, client?: unknown): boolean {
  if (RedisUnavailableError.isInstance(error)) return true;
  if (XRedisError.isInstance(error)) return false;
  if (typeof error !== 'object' || error === null) return false;
  const className = (error as { constructor?: { name?: unknown } }).constructor?.name;
  const name = typeof className === 'string' ? className : '';
  if (CLOSED_CLASSES.has(name)) return isOpen(client);
  if (TRANSIENT_CLASSES.has(name) && !isAbortReason(error)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && TRANSIENT_SYSCALL_CODES.has(code)) return true;
  const message = messageOf(error);
  if (TRANSIENT_REPLY.test(message)) return true;
  if (TRANSIENT_MESSAGES.some((re) => re.test(message))) return true;
  if (/^The client is closed/.test(message)) return isOpen(client);
  return false;
}

/** A node-redis or ioredis client that has not been closed by its owner. */
function isOpen(client: unknown): boolean {
  if (typeof client !== 'object' || client === null) return false;
  const c = client as { isOpen?: unknown; status?: unknown };
  if (typeof c.isOpen === 'boolean') return c.isOpen;
  if (typeof c.status === 'string') return c.status !== 'end';
  return false;
}

/** An `AbortSignal.timeout()` reason is a DOMException named TimeoutError: the caller's own deadline, not a fault. */
function isAbortReason(error: object): boolean {
  return typeof DOMException !== 'undefined' && error instanceof DOMException;
}

/**
 * Capped, jittered exponential backoff between attempts that met a fault: 50 ms doubling up to
 * `capMs`, each delay drawn from its upper half so that a crowd of waiters spreads out.
 *
 * @example
 * const backoff = new Backoff();
 * await sleep(backoff.next());
 */
export class Backoff {
  #attempt = 0;
  readonly #baseMs: number;
  readonly #capMs: number;

  constructor(options: { baseMs?: number; capMs?: number } = {}) {
    this.#baseMs = options.baseMs ?? 50;
    this.#capMs = options.capMs ?? 1_000;
  }

  /** The next delay in ms. */
  next(): number {
    const ceiling = Math.min(this.#capMs, this.#baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** Back to the shortest delay (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}

/** The fault itself: the `cause` of a `RedisUnavailableError`, else `error`. */
export function faultOf(error: unknown): unknown {
  return RedisUnavailableError.isInstance(error) ? error.cause : error;
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // node-redis's TimeoutError has no message: its class says what happened.
  return error.message || error.constructor.name;
}
