import type { KeptLease } from './lease-keeper';
import { sameCode } from './errors';
import { Backoff, isTransient } from './faults';
import { operation, pointEvent, type Operation, type PointEvent } from './tracing';
import { assertDurationMs } from './validate';

/** How long a release keeps retrying a transient fault (and never past the lease's deadline). */
const RELEASE_RETRY_MS = 5_000;

/** How a grant talks back to its queue; see {@link GrantQueue}. */
export interface GrantBackend {
  extend(token: string, ttlMs: number): Promise<number>;
  release(token: string): Promise<void>;
  notHeld(detail: string): Error;
  /** Called once, when the lease is first known lost. */
  lost?(detail: string): void;
}

/**
 * The traced operations and point events of a grant's primitive: `x:<pkg>:acquire` (outcome
 * `granted` at once or `waited`), `x:<pkg>:tryAcquire` (`granted` or `refused`),
 * `x:<pkg>:release` (with `handedOff`, the waiters the release granted), `x:<pkg>:extend`, and
 * the events `x:<pkg>:lease-lost` and `x:<pkg>:hand-off`.
 */
export interface GrantTracing {
  acquire: Operation<{ grant: Grant; waited: boolean }>;
  tryAcquire: Operation<Grant | null>;
  release: Operation<number>;
  extend: Operation<number>;
  leaseLost: PointEvent;
  handOff: PointEvent;
}

/**
 * Defines {@link GrantTracing} for one primitive, once per package at load, with its error codes.
 *
 * @example
 * const tracing = grantTracing('lock', { timeout: 'LOCK_TIMEOUT', notHeld: 'LOCK_NOT_HELD' });
 */
export function grantTracing(pkg: string, codes: { timeout: string; notHeld: string }): GrantTracing {
  const script = 'grant-queue.acquire';
  return {
    acquire: operation(pkg, 'acquire', {
      script,
      waits: (r) => r.waited,
      outcome: (r) => (r.waited ? 'waited' : 'granted'),
      fields: (r) => ({ fence: r.grant.fence }),
      errors: { [codes.timeout]: 'timed-out' },
    }),
    tryAcquire: operation(pkg, 'tryAcquire', {
      script,
      outcome: (grant) => (grant ? 'granted' : 'refused'),
      fields: (grant) => (grant ? { fence: grant.fence } : {}),
    }),
    release: operation<number>(pkg, 'release', {
      script: 'grant-queue.release',
      fields: (handedOff) => ({ handedOff }),
      errors: { [codes.notHeld]: 'refused' },
    }),
    extend: operation<number>(pkg, 'extend', {
      script: 'grant-queue.extend',
      fields: (expiresAt) => ({ expiresAt }),
      errors: { [codes.notHeld]: 'refused' },
    }),
    leaseLost: pointEvent(pkg, 'lease-lost'),
    handOff: pointEvent(pkg, 'hand-off'),
  };
}

/**
 * What a holder of a lease sees: a lock's `LockHandle`, a semaphore's `Permit`.
 *
 * @example
 * await using held: LeaseHandle = await lock.acquire();
 * await writeWithFence(held.fence, { signal: held.signal });
 */
export interface LeaseHandle {
  /** This holder's identity. */
  readonly token: string;
  /** Strictly increasing across the grants of one resource. */
  readonly fence: number;
  /** Permits held (1 for a lock). */
  readonly permits: number;
  /** When the lease runs out unless renewed (epoch ms of the server's clock). */
  readonly expiresAt: number;
  /** Aborts when the lease is lost; its reason is the primitive's not-held error. */
  readonly signal: AbortSignal;
  /** Throws the not-held error once `signal` has aborted, or after `release`. */
  assertHeld(): void;
  /** Renews the lease for `ttlMs` (default: its TTL) and returns the new expiry. */
  extend(ttlMs?: number): Promise<number>;
  /** Gives the lease back (handing it to the head waiter); throws the not-held error if it was lost. */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A held lease from a {@link GrantQueue}: a lock handle or a semaphore permit.
 *
 * `signal` aborts when the lease is lost (a renewal was refused, or could not be confirmed before
 * the lease would run out). `release` is idempotent for the holder and throws the primitive's
 * not-held error when the lease had been lost. `await using` releases it at the end of the block.
 *
 * @example
 * await using held = await lock.acquire();
 * await writeWithFence(held.fence, { signal: held.signal });
 */
export class Grant implements LeaseHandle {
  /** This holder's identity. */
  readonly token: string;
  /** Strictly increasing across the grants of one resource. */
  readonly fence: number;
  /** Permits held (1 for a lock). */
  readonly permits: number;
  readonly #backend: GrantBackend;
  readonly #ttlMs: number;
  readonly #controller = new AbortController();
  #expiresAt: number;
  #kept: KeptLease | undefined;
  /** `release` was called: the handle is no longer used for work. */
  #ending = false;
  /** The release reached the server (or the lease is known to be lost). */
  #released = false;
  #releasing: Promise<void> | undefined;
  /** A release was sent that may have run on the server even though its reply was lost. */
  #unsure = false;

  /** Built by GrantQueue; users get grants from `acquire`. */
  constructor(init: { token: string; fence: number; permits: number; ttlMs: number; expiresAt: number; backend: GrantBackend }) {
    this.#ttlMs = init.ttlMs;
    this.token = init.token;
    this.fence = init.fence;
    this.permits = init.permits;
    this.#expiresAt = init.expiresAt;
    this.#backend = init.backend;
  }

  /** When the lease runs out unless renewed (epoch ms of the server's clock). */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** Aborts when the lease is lost; its reason is the primitive's not-held error. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** @internal */
  attach(kept: KeptLease): void {
    this.#kept = kept;
  }

  /** @internal called by the lease keeper */
  renewed(expiresAt: number): void {
    this.#expiresAt = expiresAt;
  }

  /** @internal called by the lease keeper */
  lose(detail: string): void {
    if (this.#controller.signal.aborted) return;
    this.#controller.abort(this.#backend.notHeld(detail));
    this.#backend.lost?.(detail);
  }

  /** Throws the not-held error once `signal` has aborted. */
  assertHeld(): void {
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
    if (this.#ending) throw this.#backend.notHeld('released');
  }

  /**
   * Renews the lease for `ttlMs` (default: the TTL it was granted with) and returns the new
   * expiry; throws the not-held error when the lease is gone.
   */
  async extend(ttlMs: number = this.#ttlMs): Promise<number> {
    assertDurationMs('ttlMs', ttlMs);
    const sentAt = performance.now();
    this.assertHeld();
    try {
      this.#expiresAt = await this.#backend.extend(this.token, ttlMs);
    } catch (error) {
      if (sameCode(error, this.#backend.notHeld(''))) {
        this.#stop();
        this.lose('lease lost before extend');
      }
      throw error;
    }
    this.#kept?.extended(sentAt, ttlMs);
    return this.#expiresAt;
  }

  /**
   * Gives the lease back (handing it to the head waiter). Idempotent for the holder; throws the
   * not-held error when the lease had been lost (expired, or passed to another holder).
   *
   * A transient server fault is retried for a few seconds (never past the lease's deadline); if
   * the server stays unreachable it throws `RedisUnavailableError`, renewals have stopped so the
   * lease runs out by itself, and a later `release()` tries again.
   */
  release(): Promise<void> {
    if (this.#released) return Promise.resolve();
    this.#releasing ??= this.#release().finally(() => {
      this.#releasing = undefined;
    });
    return this.#releasing;
  }

  async #release(): Promise<void> {
    this.#ending = true;
    this.#stop();
    const lost = this.#controller.signal.aborted ? this.#controller.signal.reason : undefined;
    const leaseDeadline = this.#kept?.deadline ?? -Infinity;
    const giveUpAt = Math.min(leaseDeadline, performance.now() + RELEASE_RETRY_MS);
    const backoff = new Backoff();
    for (;;) {
      try {
        await this.#backend.release(this.token);
        break;
      } catch (error) {
        if (sameCode(error, this.#backend.notHeld(''))) {
          // The release script is keyed by the token, so sending it again is safe; but when an
          // earlier send ran and only its reply was lost, the resend finds nothing held. Before
          // the lease's deadline nobody else can have been granted it: that was our release.
          if (this.#unsure && performance.now() < leaseDeadline) break;
          this.#released = true;
          this.lose('lease lost before release');
          throw error;
        }
        if (!isTransient(error)) throw error;
        this.#unsure = true;
        const delay = backoff.next();
        if (performance.now() + delay >= giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    this.#released = true;
    if (lost) throw lost;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  #stop(): void {
    this.#kept?.stop();
  }
}
