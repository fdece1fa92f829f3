import { randomUUID } from 'node:crypto';
import type { RedisClientLike } from './client';
import { Grant, type GrantTracing } from './grant';
import { ACQUIRE_LUA, CANCEL_LUA, EXTEND_LUA, INSPECT_LUA, RELEASE_LUA } from './grant-queue-lua';
import type { Keyspace } from './keyspace';
import { LeaseKeeper, leaseDeadline } from './lease-keeper';
import { defineScript, type ScriptErrorMap } from './script';
import { waitFor } from './wait';
import { InvalidArgumentError, sameCode } from './errors';

/** A grant as won: the lease it was granted with, and what the local deadline is counted from. */
interface Won {
  fence: number;
  expiresAt: number;
  /** `performance.now()` before which the server cannot have made the grant. */
  sentAt: number;
  /** The lease's length as granted (shorter than the TTL for a hand-over). */
  firstTtlMs: number;
  /** It was not granted at the first attempt. */
  waited?: boolean;
}

const KEY_SUFFIXES = ['holders', 'grants', 'queue', 'waiters', 'meta', 'config'] as const;

// Defined once for every queue of the process (the SHA1 of each source is computed once); each
// call adds its resource's errors.
const define = (name: string, source: string) => defineScript({ name: `grant-queue.${name}`, keys: KEY_SUFFIXES, source });
const SCRIPTS = {
  acquire: define('acquire', ACQUIRE_LUA),
  release: define('release', RELEASE_LUA),
  extend: define('extend', EXTEND_LUA),
  cancel: define('cancel', CANCEL_LUA),
  inspect: define('inspect', INSPECT_LUA),
};

/** How one primitive uses the queue. */
export interface GrantQueueOptions {
  /** Fixed limit (1 for a lock), or `null` to read it from the resource's config hash. */
  limit: number | null;
  /** The primitive's error for a lease that is not held (`LOCK_NOT_HELD`, `PERMIT_NOT_HELD`). */
  notHeld(detail: string): Error;
  /** The primitive's error for a wait that ran out. */
  timeout(timeoutMs: number): Error;
  /** The primitive's error when no limit is set (`limit: null` only). */
  notFound?(detail: string): Error;
  /** Trace releases and extends, lost leases and hand-offs under this resource name. */
  tracing?: { resource: string } & GrantTracing;
}

/** A lease request. */
export interface GrantRequest {
  permits: number;
  ttlMs: number;
  /** Renew the lease while this process lives (else the signal aborts at its deadline). */
  autoExtend: boolean;
}

/** A holder as `inspect` reports it. */
export interface GrantHolder {
  token: string;
  permits: number;
  fence: number;
  expiresAt: number;
}

/**
 * A FIFO queue of leased grants: what a lock (limit 1) and a semaphore (N permits) share.
 *
 * Acquiring is one script: it reclaims expired holders, hands free permits to live waiters at the
 * head of the queue, then grants or queues the caller. Releasing hands the grant to the head
 * waiter inside the releasing script and publishes it on the resource's channel, so the waiter
 * owns it on receipt, with no further round trip and no barging by newcomers. Waiters hold short
 * leases of their own (renewed by their re-checks), so one that died in the queue is skipped.
 *
 * @example
 * const queue = new GrantQueue(client, keyspace('x', 'lock', name), {
 *   limit: 1, notHeld: (d) => new LockNotHeldError(d), timeout: (ms) => new LockTimeoutError(ms),
 * });
 * const grant = await queue.acquire({ permits: 1, ttlMs: 30_000, autoExtend: true }, { timeoutMs: 5_000 });
 */
export class GrantQueue {
  readonly #client: RedisClientLike;
  readonly #ks: Keyspace;
  readonly #keys: string[];
  readonly #options: GrantQueueOptions;
  /** This resource's errors for the scripts' NOT_HELD and NOT_FOUND. */
  readonly #errors: ScriptErrorMap;

  constructor(client: RedisClientLike, ks: Keyspace, options: GrantQueueOptions) {
    this.#client = client;
    this.#ks = ks;
    this.#keys = KEY_SUFFIXES.map((s) => ks.key(s));
    this.#options = options;
    this.#errors = {
      NOT_HELD: (detail) => options.notHeld(detail),
      NOT_FOUND: (detail) => (options.notFound ?? ((d: string) => new InvalidArgumentError(d)))(detail),
    };
  }

  /** The KEYS every grant-queue script takes, in order (for scripts that include the queue's Lua). */
  get keys(): readonly string[] {
    return this.#keys;
  }

  get #limitArg(): string {
    return this.#options.limit === null ? '' : String(this.#options.limit);
  }

  /** One round trip: a grant, or `null` when it cannot be had right now. Never queues. */
  tryAcquire(request: GrantRequest): Promise<Grant | null> {
    const t = this.#options.tracing;
    return t ? t.tryAcquire.trace(t.resource, () => this.#tryAcquire(request), { permits: request.permits }) : this.#tryAcquire(request);
  }

  async #tryAcquire(request: GrantRequest): Promise<Grant | null> {
    const token = randomUUID();
    const sentAt = performance.now();
    const reply = (await SCRIPTS.acquire.run(this.#client, this.#keys, [
      token, request.permits, request.ttlMs, 0, this.#limitArg, this.#ks.channel,
    ], this.#errors)) as [number, string | number, string?];
    if (reply[0] === 0) return null;
    const won = await this.#confirm(token, request, { fence: Number(reply[1]), expiresAt: Number(reply[2]), sentAt, firstTtlMs: request.ttlMs });
    return won ? this.#hold(token, request, won) : null;
  }

  /**
   * A grant whose reply came so late that its lease may have run out (a paused or overloaded
   * server) is confirmed by one renewal before it is handed to the caller: a handle never starts
   * out lost. Returns null when the lease is indeed gone.
   */
  async #confirm(token: string, request: GrantRequest, won: Won): Promise<Won | null> {
    if (performance.now() < leaseDeadline(won.sentAt, won.firstTtlMs)) return won;
    const sentAt = performance.now();
    try {
      const expiresAt = Number(await SCRIPTS.extend.run(this.#client, this.#keys, [token, request.ttlMs], this.#errors));
      return { fence: won.fence, expiresAt, sentAt, firstTtlMs: request.ttlMs, waited: won.waited };
    } catch (error) {
      if (sameCode(error, this.#options.notHeld(''))) return null;
      throw error;
    }
  }

  /** Waits in FIFO order (no polling) until granted, `timeoutMs` runs out, or `signal` aborts. */
  async acquire(request: GrantRequest, wait: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<Grant> {
    const t = this.#options.tracing;
    const acquired = t
      ? await t.acquire.trace(t.resource, () => this.#acquire(request, wait), { permits: request.permits })
      : await this.#acquire(request, wait);
    return acquired.grant;
  }

  async #acquire(request: GrantRequest, wait: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<{ grant: Grant; waited: boolean }> {
    const token = randomUUID();
    const startedAt = performance.now();
    for (;;) {
      const timeoutMs = wait.timeoutMs - (performance.now() - startedAt);
      const won = await this.#confirm(token, request, await this.#wait(token, request, { timeoutMs: Math.max(0, timeoutMs), signal: wait.signal }, wait.timeoutMs));
      if (won) return { grant: this.#hold(token, request, won), waited: won.waited === true };
    }
  }

  async #wait(token: string, request: GrantRequest, wait: { timeoutMs: number; signal?: AbortSignal | undefined }, totalTimeoutMs: number): Promise<Won> {
    const waiterTtlMs = Math.min(10_000, Math.max(1_000, Math.floor(request.ttlMs / 3)));
    // A grant handed over in a message was made after our last attempt that was refused: its
    // lease cannot run out before that attempt's send time plus the hand-over's length.
    let lastRefusedAt = performance.now();
    let waited = false;
    const handOverTtlMs = Math.min(request.ttlMs, waiterTtlMs);
    return waitFor<Won>({
      client: this.#client,
      channel: this.#ks.channel,
      target: token,
      timeoutMs: wait.timeoutMs,
      signal: wait.signal,
      timeoutError: () => this.#options.timeout(totalTimeoutMs),
      attempt: async () => {
        const sentAt = performance.now();
        const reply = (await SCRIPTS.acquire.run(this.#client, this.#keys, [
          token, request.permits, request.ttlMs, waiterTtlMs, this.#limitArg, this.#ks.channel,
        ], this.#errors)) as [number, string | number, string?];
        if (reply[0] === 1) return { done: { fence: Number(reply[1]), expiresAt: Number(reply[2]), sentAt, firstTtlMs: request.ttlMs, waited } };
        if (reply[0] === 2) {
          // Handed over earlier; the message was missed.
          return { done: { fence: Number(reply[1]), expiresAt: Number(reply[2]), sentAt: lastRefusedAt, firstTtlMs: handOverTtlMs, waited: true } };
        }
        lastRefusedAt = sentAt;
        waited = true;
        return { retryInMs: Number(reply[1]) };
      },
      onWake: (payload) => {
        const [kind, fence, expiresAt] = payload.split(' ');
        if (kind !== 'g') return undefined;
        return { fence: Number(fence), expiresAt: Number(expiresAt), sentAt: lastRefusedAt, firstTtlMs: handOverTtlMs, waited: true };
      },
      cancel: async () => {
        await SCRIPTS.cancel.run(this.#client, this.#keys, [token, this.#limitArg, this.#ks.channel], this.#errors);
      },
    });
  }

  /** Live holders, live waiters and the limit (`-1` when none is set), read in one round trip. */
  async inspect(): Promise<{ limit: number; waiters: number; holders: GrantHolder[] }> {
    const reply = (await SCRIPTS.inspect.run(this.#client, this.#keys, [this.#limitArg], this.#errors)) as Array<string | number>;
    const holders: GrantHolder[] = [];
    for (let i = 2; i + 3 < reply.length; i += 4) {
      holders.push({ token: String(reply[i]), permits: Number(reply[i + 1]), fence: Number(reply[i + 2]), expiresAt: Number(reply[i + 3]) });
    }
    return { limit: Number(reply[0]), waiters: Number(reply[1]), holders };
  }

  #hold(token: string, request: GrantRequest, { fence, expiresAt, sentAt, firstTtlMs }: Won): Grant {
    const notHeld = this.#options.notHeld;
    const tracing = this.#options.tracing;
    const fields = { fence, permits: request.permits };
    const extend = async (t: string, ttlMs: number) => Number(await SCRIPTS.extend.run(this.#client, this.#keys, [t, ttlMs], this.#errors));
    const release = async (t: string) => Number(await SCRIPTS.release.run(this.#client, this.#keys, [t, this.#limitArg, this.#ks.channel], this.#errors));
    const backend = tracing
      ? {
          extend: (t: string, ttlMs: number) => tracing.extend.trace(tracing.resource, () => extend(t, ttlMs), fields),
          release: async (t: string) => {
            const handedOff = await tracing.release.trace(tracing.resource, () => release(t), fields);
            if (handedOff > 0) tracing.handOff.publish(tracing.resource, { fence, handedOff });
          },
          lost: (detail: string) => tracing.leaseLost.publish(tracing.resource, { fence, detail }),
          notHeld,
        }
      : { extend, release: async (t: string) => void (await release(t)), notHeld };
    const grant = new Grant({ token, fence, permits: request.permits, ttlMs: request.ttlMs, expiresAt, backend });
    const renew = async (): Promise<number | null> => {
      try {
        return await extend(token, request.ttlMs); // the keeper's renewals are not traced: too many
      } catch (error) {
        if (sameCode(error, notHeld(''))) return null;
        throw error;
      }
    };
    const kept = LeaseKeeper.for(this.#client).keep({
      ttlMs: request.ttlMs,
      sentAt,
      initialTtlMs: firstTtlMs,
      // Without autoExtend, a hand-over (good only for the waiter's own lease) is still brought up
      // to the full TTL once.
      ...(request.autoExtend ? { renew } : firstTtlMs < request.ttlMs ? { renew, maxRenewals: 1 } : {}),
      onRenewed: (at) => grant.renewed(at),
      onLost: (why) => grant.lose(why === 'refused' ? 'the lease was taken over' : 'the lease ran out before it could be renewed'),
    });
    grant.attach(kept);
    return grant;
  }
}
