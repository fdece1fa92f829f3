import type { RedisClientLike } from './client';
import { onCloseResources } from './clients';

/** What the keeper needs to keep one lease alive. */
export interface LeaseSpec {
  /** The lease's length; renewals ask for this much again. */
  ttlMs: number;
  /** `performance.now()` when the request that set the current expiry was sent. */
  sentAt: number;
  /**
   * Renews the lease in one round trip: the new server expiry (epoch ms), or `null` when the
   * lease is gone (taken over, released). Without it the lease only runs out at its deadline.
   */
  renew?: () => Promise<number | null>;
  /**
   * The length of the current lease, when shorter than `ttlMs` (a hand-over that is only good
   * until the waiter's own lease ran out). The first renewal is then due at once.
   */
  initialTtlMs?: number;
  /** Stop renewing after this many successful renewals (the lease then runs out at its deadline). */
  maxRenewals?: number;
  /** Called with the new server expiry after each renewal. */
  onRenewed?: (expiresAt: number) => void;
  /**
   * Called once when the lease is lost: `refused` when a renewal found it gone, `expired` when its
   * deadline passed with no renewal confirmed (the server may have been unreachable or paused).
   */
  onLost: (why: 'refused' | 'expired', cause?: unknown) => void;
}

/** A lease registered with the keeper. */
export interface KeptLease {
  /** Stops renewing (after a release). */
  stop(): void;
  /** Records an expiry set by the caller (a manual extend sent at `sentAt` for `ttlMs`). */
  extended(sentAt: number, ttlMs: number): void;
  /** Whether the lease was lost. */
  readonly lost: boolean;
  /** The local time (`performance.now()`) before which the server cannot have let the lease run out. */
  readonly deadline: number;
}

interface Entry {
  spec: LeaseSpec;
  ttlMs: number;
  renewals: number;
  /** Local time by which the lease must be considered lost. */
  deadline: number;
  renewAt: number;
  inFlight: boolean;
  done: boolean;
  lost: boolean;
}

const keepers = new WeakMap<object, LeaseKeeper>();

/**
 * One keeper per client per process renews every lease it holds on one timer. A lease is renewed
 * at a third of its TTL (with jitter); renewals that fall due together are sent in the same tick,
 * so node-redis writes them as one pipeline (one round trip for all of them). A lease whose
 * renewal is refused, or whose deadline passes without a confirmed renewal, is reported lost
 * before the server lets anybody else have it: the deadline is counted from when the request was
 * sent, minus a safety margin. Nothing here rejects unhandled.
 *
 * @example
 * const kept = LeaseKeeper.for(client).keep({
 *   ttlMs, sentAt, renew: () => extendScript(...), onLost: (why) => controller.abort(...),
 * });
 * ...
 * kept.stop();
 */
export class LeaseKeeper {
  readonly #entries = new Set<Entry>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  /** The keeper of `client` in this process. */
  static for(client: RedisClientLike): LeaseKeeper {
    let keeper = keepers.get(client);
    if (!keeper) {
      keeper = new LeaseKeeper();
      keepers.set(client, keeper);
      onCloseResources(client, async () => LeaseKeeper.close(client));
    }
    return keeper;
  }

  /**
   * Stops the keeper of `client`: nothing is renewed any more, and every lease it kept is reported
   * lost (`expired`), so that the handles' `signal`s abort before the server lets the leases go.
   */
  static close(client: RedisClientLike): void {
    const keeper = keepers.get(client);
    if (!keeper) return;
    keepers.delete(client);
    if (keeper.#timer) clearTimeout(keeper.#timer);
    keeper.#timer = undefined;
    keeper.#timerAt = Infinity;
    for (const entry of [...keeper.#entries]) keeper.#lose(entry, 'expired');
  }

  /** Number of leases being kept. */
  get size(): number {
    return this.#entries.size;
  }

  keep(spec: LeaseSpec): KeptLease {
    const first = Math.min(spec.ttlMs, spec.initialTtlMs ?? spec.ttlMs);
    const entry: Entry = {
      spec,
      ttlMs: spec.ttlMs,
      renewals: 0,
      deadline: deadlineOf(spec.sentAt, first),
      renewAt: first < spec.ttlMs ? spec.sentAt : renewTimeOf(spec.sentAt, spec.ttlMs),
      inFlight: false,
      done: false,
      lost: false,
    };
    if (!spec.renew) entry.renewAt = Infinity;
    this.#entries.add(entry);
    this.#schedule();
    return {
      stop: () => {
        entry.done = true;
        this.#entries.delete(entry);
        this.#schedule();
      },
      extended: (sentAt, ttlMs) => {
        if (entry.done) return;
        entry.ttlMs = ttlMs;
        entry.deadline = Math.max(entry.deadline, deadlineOf(sentAt, ttlMs));
        const more = spec.maxRenewals === undefined || entry.renewals < spec.maxRenewals;
        if (spec.renew && more) entry.renewAt = renewTimeOf(sentAt, ttlMs);
        this.#schedule();
      },
      get lost() {
        return entry.lost;
      },
      get deadline() {
        return entry.deadline;
      },
    };
  }

  #tick = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    for (const entry of [...this.#entries]) {
      if (now >= entry.deadline) {
        this.#lose(entry, 'expired');
        continue;
      }
      // Renew early rather than fire again soon: leases due within a tenth of their TTL go now.
      if (!entry.inFlight && entry.renewAt - entry.ttlMs / 10 <= now) this.#renew(entry, now);
    }
    this.#schedule();
  };

  #renew(entry: Entry, sentAt: number): void {
    const renew = entry.spec.renew;
    if (!renew) return;
    entry.inFlight = true;
    const ttlMs = entry.ttlMs;
    renew().then(
      (expiresAt) => {
        entry.inFlight = false;
        if (entry.done) return;
        if (expiresAt === null) {
          this.#lose(entry, 'refused');
        } else {
          entry.deadline = Math.max(entry.deadline, deadlineOf(sentAt, ttlMs));
          entry.renewals += 1;
          const more = entry.spec.maxRenewals === undefined || entry.renewals < entry.spec.maxRenewals;
          entry.renewAt = more ? renewTimeOf(sentAt, ttlMs) : Infinity;
          safely(() => entry.spec.onRenewed?.(expiresAt));
        }
        this.#schedule();
      },
      () => {
        // Unreachable or paused server: try again soon; the deadline still stands.
        entry.inFlight = false;
        if (entry.done) return;
        entry.renewAt = performance.now() + Math.min(entry.ttlMs / 10, 1_000);
        this.#schedule();
      },
    );
  }

  #lose(entry: Entry, why: 'refused' | 'expired', cause?: unknown): void {
    if (entry.done) return;
    entry.done = true;
    entry.lost = true;
    this.#entries.delete(entry);
    safely(() => entry.spec.onLost(why, cause));
  }

  #schedule(): void {
    let at = Infinity;
    for (const entry of this.#entries) {
      at = Math.min(at, entry.deadline);
      if (!entry.inFlight) at = Math.min(at, entry.renewAt - entry.ttlMs / 10);
    }
    if (at === this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = setTimeout(this.#tick, Math.max(0, at - performance.now()));
    // Leases never keep a process alive by themselves.
    this.#timer.unref();
  }
}

/**
 * The local time (`performance.now()`) by which a lease set by a request sent at `sentAt` for
 * `ttlMs` must be taken as lost: the server cannot have let it run out earlier.
 *
 * @example
 * if (performance.now() >= leaseDeadline(sentAt, ttlMs)) await confirmByRenewing();
 */
export function leaseDeadline(sentAt: number, ttlMs: number): number {
  return deadlineOf(sentAt, ttlMs);
}

function deadlineOf(sentAt: number, ttlMs: number): number {
  return sentAt + ttlMs - Math.min(ttlMs / 10, 500);
}

function renewTimeOf(sentAt: number, ttlMs: number): number {
  return sentAt + (ttlMs / 3) * (0.85 + Math.random() * 0.15);
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A callback's failure must not stop the keeper.
  }
}
