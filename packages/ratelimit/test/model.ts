import type { RateLimit, RateLimitAlgorithm } from '../src';

/** What one limit says about a call at `now` (µs), as the spec defines it. */
export interface Check {
  ok: boolean;
  /** µs until the cost would fit (0 when it does). */
  wait: number;
  before: number;
  after: number;
  fullBefore: number;
  fullAfter: number;
}

/** One limit of one key, in memory. */
export interface LimitModel {
  check(now: number, cost: number): Check;
  charge(now: number, cost: number): void;
  /** Gives `cost` back; returns [remaining, full at µs]. */
  refund(now: number, cost: number): [number, number];
}

/** ceil(windowMs * 1000 / limit): the µs between two units. */
export function interval(l: RateLimit): number {
  return Math.ceil((l.windowMs * 1000) / l.limit);
}

class Gcra implements LimitModel {
  tat = 0;
  constructor(readonly l: RateLimit) {}
  check(now: number, cost: number): Check {
    const t = interval(this.l);
    const burst = t * this.l.limit;
    const tat = Math.max(this.tat, now);
    const next = tat + cost * t;
    const ok = next - now <= burst;
    return {
      ok,
      wait: ok ? 0 : next - burst - now,
      before: Math.floor((burst - (tat - now)) / t),
      after: Math.floor((burst - (next - now)) / t),
      fullBefore: tat,
      fullAfter: next,
    };
  }
  charge(now: number, cost: number): void {
    this.tat = Math.max(this.tat, now) + cost * interval(this.l);
  }
  refund(now: number, cost: number): [number, number] {
    const t = interval(this.l);
    this.tat = Math.max(this.tat - cost * t, now);
    return [Math.floor((t * this.l.limit - (this.tat - now)) / t), this.tat];
  }
}

class TokenBucket implements LimitModel {
  tokens: number;
  ts = 0;
  constructor(readonly l: RateLimit) {
    this.tokens = l.limit;
  }
  #refill(now: number): void {
    const t = interval(this.l);
    if (this.ts > now) this.ts = now;
    const steps = Math.floor((now - this.ts) / t);
    this.tokens += steps;
    this.ts += steps * t;
    if (this.tokens >= this.l.limit) {
      this.tokens = this.l.limit;
      this.ts = now;
    }
  }
  check(now: number, cost: number): Check {
    this.#refill(now);
    const t = interval(this.l);
    const { tokens: k, ts } = this;
    const ok = k >= cost;
    return {
      ok,
      wait: ok ? 0 : ts + (cost - k) * t - now,
      before: k,
      after: k - cost,
      fullBefore: ts + (this.l.limit - k) * t,
      fullAfter: ts + (this.l.limit - k + cost) * t,
    };
  }
  charge(now: number, cost: number): void {
    this.#refill(now);
    this.tokens -= cost;
  }
  refund(now: number, cost: number): [number, number] {
    this.#refill(now);
    this.tokens = Math.min(this.l.limit, this.tokens + cost);
    if (this.tokens === this.l.limit) this.ts = now;
    return [this.tokens, this.ts + (this.l.limit - this.tokens) * interval(this.l)];
  }
}

class FixedWindow implements LimitModel {
  index = -1;
  count = 0;
  constructor(readonly l: RateLimit) {}
  #roll(now: number): void {
    const index = Math.floor(Math.floor(now / 1000) / this.l.windowMs);
    if (index > this.index) {
      this.index = index;
      this.count = 0;
    }
  }
  check(now: number, cost: number): Check {
    this.#roll(now);
    const full = (this.index + 1) * this.l.windowMs * 1000;
    const ok = this.count + cost <= this.l.limit;
    return {
      ok,
      wait: ok ? 0 : full - now,
      before: this.l.limit - this.count,
      after: this.l.limit - this.count - cost,
      fullBefore: this.count > 0 ? full : now,
      fullAfter: full,
    };
  }
  charge(now: number, cost: number): void {
    this.#roll(now);
    this.count += cost;
  }
  refund(now: number, cost: number): [number, number] {
    this.#roll(now);
    this.count = Math.max(0, this.count - cost);
    return [this.l.limit - this.count, this.count > 0 ? (this.index + 1) * this.l.windowMs * 1000 : now];
  }
}

class SlidingWindow implements LimitModel {
  log: Array<{ t: number; c: number }> = [];
  constructor(readonly l: RateLimit) {}
  #live(now: number) {
    return this.log.filter((e) => e.t > now - this.l.windowMs * 1000);
  }
  check(now: number, cost: number): Check {
    const w = this.l.windowMs * 1000;
    const live = this.#live(now);
    const sum = live.reduce((n, e) => n + e.c, 0);
    const ok = sum + cost <= this.l.limit;
    let wait = 0;
    if (!ok) {
      let freed = 0;
      for (const e of live) {
        freed += e.c;
        if (freed >= sum + cost - this.l.limit) {
          wait = e.t + w - now;
          break;
        }
      }
    }
    return { ok, wait, before: this.l.limit - sum, after: this.l.limit - sum - cost, fullBefore: sum === 0 ? now : live.at(-1)!.t + w, fullAfter: now + w };
  }
  charge(now: number, cost: number): void {
    this.log = this.#live(now);
    this.log.push({ t: now, c: cost });
  }
  refund(now: number, cost: number): [number, number] {
    this.log = this.#live(now);
    let left = cost;
    while (left > 0 && this.log.length > 0) {
      const last = this.log.at(-1)!;
      if (last.c > left) {
        last.c -= left;
        left = 0;
      } else {
        left -= last.c;
        this.log.pop();
      }
    }
    const sum = this.log.reduce((n, e) => n + e.c, 0);
    return [this.l.limit - sum, sum === 0 ? now : this.log.at(-1)!.t + this.l.windowMs * 1000];
  }
}

const MODELS: Record<RateLimitAlgorithm, new (l: RateLimit) => LimitModel> = {
  gcra: Gcra,
  'token-bucket': TokenBucket,
  'fixed-window': FixedWindow,
  'sliding-window': SlidingWindow,
};

/** What the model expects a call to return: the fields of a decision it can predict. */
export interface Expected {
  allowed: boolean;
  retryAfterMs: number;
  policies: Array<{ remaining: number; resetAt: number }>;
}

/** Every limit of one key, in memory: the spec's rules for one algorithm. */
export class KeyModel {
  limits: LimitModel[];
  constructor(
    readonly algorithm: RateLimitAlgorithm,
    readonly config: readonly RateLimit[],
  ) {
    this.limits = config.map((l) => new MODELS[algorithm](l));
  }

  decide(now: number, cost: number, charge: boolean): Expected {
    const checks = this.limits.map((m) => m.check(now, cost));
    const allowed = checks.every((c) => c.ok);
    const wait = Math.max(0, ...checks.map((c) => c.wait));
    if (allowed && charge) for (const m of this.limits) m.charge(now, cost);
    const ms = (us: number) => Math.ceil(us / 1000);
    return {
      allowed,
      retryAfterMs: allowed ? 0 : ms(wait),
      policies: checks.map((c) => (allowed && charge ? { remaining: c.after, resetAt: ms(c.fullAfter) } : { remaining: c.before, resetAt: ms(c.fullBefore) })),
    };
  }

  refund(now: number, cost: number): Expected {
    const rows = this.limits.map((m) => m.refund(now, cost));
    return { allowed: true, retryAfterMs: 0, policies: rows.map(([remaining, full]) => ({ remaining, resetAt: Math.ceil(full / 1000) })) };
  }

  reset(): void {
    this.limits = this.config.map((l) => new MODELS[this.algorithm](l));
  }
}

/** An admission: server time (µs) and cost. */
export interface Admission {
  t: number;
  c: number;
}

/**
 * The invariant itself, checked on a history of admissions (net of refunds): no window ever
 * holds more than the algorithm allows. Returns a description of the first violation, or null.
 */
export function overAdmission(algorithm: RateLimitAlgorithm, l: RateLimit, history: readonly Admission[]): string | null {
  const w = l.windowMs * 1000;
  const sorted = [...history].sort((a, b) => a.t - b.t);
  if (algorithm === 'fixed-window') {
    const byWindow = new Map<number, number>();
    for (const a of sorted) {
      const index = Math.floor(Math.floor(a.t / 1000) / l.windowMs);
      byWindow.set(index, (byWindow.get(index) ?? 0) + a.c);
    }
    for (const [index, n] of byWindow) if (n > l.limit) return `${n} admitted in fixed window ${index} of ${l.limit}/${l.windowMs} ms`;
    return null;
  }
  if (algorithm === 'sliding-window') {
    for (let j = 0; j < sorted.length; j++) {
      let n = 0;
      for (let i = 0; i <= j; i++) if (sorted[i]!.t > sorted[j]!.t - w) n += sorted[i]!.c;
      if (n > l.limit) return `${n} admitted in the ${l.windowMs} ms before ${sorted[j]!.t} µs (limit ${l.limit})`;
    }
    return null;
  }
  // gcra and token-bucket: a burst of `limit`, then one unit per interval.
  const t = interval(l);
  for (let i = 0; i < sorted.length; i++) {
    let n = 0;
    for (let j = i; j < sorted.length; j++) {
      n += sorted[j]!.c;
      const allowed = l.limit + Math.floor((sorted[j]!.t - sorted[i]!.t) / t);
      if (n > allowed) return `${n} admitted from ${sorted[i]!.t} to ${sorted[j]!.t} µs, at most ${allowed} allowed`;
    }
  }
  return null;
}

/** Takes `cost` off the newest admissions (what a refund gives back). */
export function refundHistory(history: Admission[], cost: number): void {
  let left = cost;
  while (left > 0 && history.length > 0) {
    const last = history.at(-1)!;
    if (last.c > left) {
      last.c -= left;
      left = 0;
    } else {
      left -= last.c;
      history.pop();
    }
  }
}
