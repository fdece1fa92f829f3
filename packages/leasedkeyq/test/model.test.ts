import fc from 'fast-check';
import { WakeBus, XRedisError } from '@x/redis-core';
import { TARGETS, uniquePrefix } from '@x/testing';
import { LeasedKeyQueue, type InFlightPolicy, type Lease } from '../src';
import { connect, type TestClient } from './support';

const MAX_DELIVERIES = 2;

/** The spec's queue, in memory: what every step of the real queue is checked against. */
class ModelQueue {
  available: string[] = [];
  values = new Map<string, number>();
  /** Leases of each item so far (kept across release, dropped when the item leaves). */
  deliveries = new Map<string, number>();
  errors = new Map<string, string>();
  /** Dead letters, oldest first; a key dead-lettered again moves to the end. */
  dead: Array<{ key: string; value: number; deliveries: number; error: string | null }> = [];
  /** In-flight keys in the order they were leased: key -> lease id, leased value, next value. */
  inflight = new Map<string, { lease: number; value: number; next?: number }>();
  acked = new Set<number>();
  owner: number[] = [];

  put(key: string, value: number, mode: InFlightPolicy): string {
    const held = this.inflight.get(key);
    if (held) {
      if (mode === 'reject') return 'KEY_ALREADY_IN_FLIGHT';
      held.next = value;
      if (mode === 'buffer') return 'buffered';
      held.value = value;
      return 'updated';
    }
    this.values.set(key, value);
    if (this.available.includes(key)) return 'replaced';
    this.available.push(key);
    return 'added';
  }

  #deadLetter(key: string): void {
    this.dead = this.dead.filter((d) => d.key !== key);
    this.dead.push({ key, value: this.values.get(key)!, deliveries: this.deliveries.get(key) ?? 0, error: this.errors.get(key) ?? null });
    this.values.delete(key);
    this.deliveries.delete(key);
    this.errors.delete(key);
  }

  /** Takes key out of the available items: leased, or dead-lettered if leased too often. */
  lease(key: string, instance: number): { key: string; value: number; lease: number; deliveries: number } | undefined {
    this.available.splice(this.available.indexOf(key), 1);
    const deliveries = (this.deliveries.get(key) ?? 0) + 1;
    if (deliveries > MAX_DELIVERIES) {
      this.#deadLetter(key);
      return undefined;
    }
    this.deliveries.set(key, deliveries);
    const lease = this.owner.length;
    this.owner.push(instance);
    const value = this.values.get(key)!;
    this.inflight.set(key, { lease, value });
    return { key, value, lease, deliveries };
  }

  get(instance: number) {
    for (;;) {
      const key = this.available[0];
      if (key === undefined) return 'QUEUE_TIMEOUT';
      const got = this.lease(key, instance);
      if (got) return got;
    }
  }

  take(key: string, instance: number) {
    return (this.available.includes(key) && this.lease(key, instance)) || 'QUEUE_TIMEOUT';
  }

  #check(key: string, lease: number): string | undefined {
    if (this.acked.has(lease)) return 'LEASE_ALREADY_ACKNOWLEDGED';
    if (this.inflight.get(key)?.lease !== lease) return 'INVALID_LEASE';
    return undefined;
  }

  ack(key: string, lease: number): string {
    const refused = this.#check(key, lease);
    if (refused) return refused;
    const { next } = this.inflight.get(key)!;
    this.inflight.delete(key);
    this.acked.add(lease);
    this.deliveries.delete(key);
    this.errors.delete(key);
    if (next === undefined) {
      this.values.delete(key);
    } else {
      this.values.set(key, next);
      this.available.push(key);
    }
    return 'ok';
  }

  release(key: string, lease: number, front: boolean, error?: string, returned = false): string {
    const refused = this.#check(key, lease);
    if (refused) return refused;
    const { next, value } = this.inflight.get(key)!;
    this.inflight.delete(key);
    this.values.set(key, next ?? value);
    if (error !== undefined) this.errors.set(key, error);
    // Leased as often as allowed: it cannot be leased again (close() leaves that to the next get).
    if (!returned && this.deliveries.get(key)! >= MAX_DELIVERIES) {
      this.#deadLetter(key);
      return 'dead-lettered';
    }
    if (front) this.available.unshift(key);
    else this.available.push(key);
    return 'released';
  }

  close(instance: number): void {
    const mine = [...this.inflight].filter(([, held]) => this.owner[held.lease] === instance);
    // The earliest leased ends up first in line.
    for (const [key, held] of mine.reverse()) this.release(key, held.lease, true, undefined, true);
  }

  /** Dead letters back at the end, oldest first; those whose key is in the queue again stay. */
  redrive(): number {
    let n = 0;
    for (const d of [...this.dead]) {
      if (this.available.includes(d.key) || this.inflight.has(d.key)) continue;
      this.dead.splice(this.dead.indexOf(d), 1);
      this.values.set(d.key, d.value);
      this.available.push(d.key);
      n += 1;
    }
    return n;
  }

  peek(key: string): number | undefined {
    return this.available.includes(key) ? this.values.get(key) : undefined;
  }
}

type Step =
  | { op: 'put'; key: string; value: number; mode: InFlightPolicy; via: number }
  | { op: 'get'; via: number }
  | { op: 'take'; key: string; via: number }
  | { op: 'ack'; pick: number; via: number }
  | { op: 'release'; pick: number; front: boolean; error: string | undefined; via: number }
  | { op: 'redrive'; via: number }
  | { op: 'peek'; key: string; via: number }
  | { op: 'close'; via: number };

const key = fc.constantFrom('a', 'b', 'c', 'd');
const via = fc.integer({ min: 0, max: 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('put' as const), key, value: fc.integer({ min: 0, max: 99 }), mode: fc.constantFrom<InFlightPolicy>('update', 'reject', 'buffer'), via }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('get' as const), via }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('take' as const), key, via }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('ack' as const), pick: fc.nat(), via }), weight: 3 },
  {
    arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat(), front: fc.boolean(), error: fc.option(fc.constantFrom('boom', 'timeout'), { nil: undefined }), via }),
    weight: 4,
  },
  { arbitrary: fc.record({ op: fc.constant('redrive' as const), via }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('peek' as const), key, via }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('close' as const), via }), weight: 1 },
);

const codeOf = (error: unknown): string => {
  if (XRedisError.isInstance(error)) return error.code;
  throw error;
};

describe.each(TARGETS)('LeasedKeyQueue against an in-memory model on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('agrees with the model on every reply, order and count over random steps', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 50 }), async (steps) => {
        const prefix = uniquePrefix();
        const open = () => new LeasedKeyQueue<number>(client, 'model', { prefix, defaultLeaseTimeoutMs: null, maxDeliveries: MAX_DELIVERIES });
        // Two instances, as two processes; a closed one is replaced by a new instance.
        const instances = [open(), open()];
        const generation = [0, 1];
        let next = 2;
        const model = new ModelQueue();
        const leases: Array<{ lease: Lease; id: number }> = [];
        for (const s of steps) {
          const q = instances[s.via]!;
          const me = generation[s.via]!;
          switch (s.op) {
            case 'put': {
              const real = await q.put(s.key, s.value, { ifInFlight: s.mode }).catch(codeOf);
              expect(real).toBe(model.put(s.key, s.value, s.mode));
              break;
            }
            case 'get':
            case 'take': {
              const expected = s.op === 'get' ? model.get(me) : model.take(s.key, me);
              const real = await (s.op === 'get' ? q.get({ timeoutMs: 0 }) : q.take(s.key, { timeoutMs: 0 })).catch(codeOf);
              if (typeof expected === 'string') {
                expect(real).toBe(expected);
              } else {
                expect(typeof real).toBe('object');
                const item = real as Exclude<typeof real, string>;
                expect([item.key, item.value, item.deliveries, item.lease.deliveries]).toEqual([expected.key, expected.value, expected.deliveries, expected.deliveries]);
                leases.push({ lease: item.lease, id: expected.lease });
              }
              break;
            }
            case 'ack':
            case 'release': {
              if (leases.length === 0) break;
              const { lease, id } = leases[s.pick % leases.length]!;
              if (s.op === 'ack') {
                const expected = model.ack(lease.key, id);
                expect(await q.ack(lease).then(() => 'ok', codeOf)).toBe(expected);
              } else {
                const expected = model.release(lease.key, id, s.front, s.error);
                const real = await q.release(lease, { requeueFront: s.front, ...(s.error === undefined ? {} : { error: s.error }) }).catch(codeOf);
                expect(real).toBe(expected);
              }
              break;
            }
            case 'redrive':
              expect(await q.redrive()).toBe(model.redrive());
              break;
            case 'peek':
              expect(await q.peek(s.key)).toBe(model.peek(s.key));
              break;
            case 'close':
              await q.close();
              model.close(me);
              instances[s.via] = open();
              generation[s.via] = next++;
              break;
          }
          const probe = instances[0]!;
          expect(await probe.availableKeys()).toEqual(model.available);
          expect(await probe.inflightKeys()).toEqual([...model.inflight.keys()]);
          expect(await probe.size()).toBe(model.available.length);
          expect(await probe.inflightSize()).toBe(model.inflight.size);
          expect((await probe.deadLetters()).map(({ key, value, deliveries, error }) => ({ key, value, deliveries, error }))).toEqual(model.dead);
          expect(await probe.deadLetterSize()).toBe(model.dead.length);
        }
      }),
      { numRuns: 50 },
    );
  });
});
