import fc from 'fast-check';
import { WakeBus, XRedisError } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { Quota, type ChunkLease } from '../src';
import { resourceKeys } from '../src/resource';

type Step =
  | { op: 'topUp'; amount: number; key?: string }
  | { op: 'tryConsume'; amount: number; key?: string }
  | { op: 'setAvailable'; available: number }
  | { op: 'reserve'; amount: number; id: string }
  | { op: 'commit'; id: string; amount?: number }
  | { op: 'cancel'; id: string }
  | { op: 'expireHold'; id: string }
  | { op: 'allocate'; amount: number; id: string; owner: string }
  | { op: 'consumeChunk'; id: string; amount: number; owner: string; opId?: string }
  | { op: 'renew'; id: string; owner: string }
  | { op: 'release'; id: string; owner: string }
  | { op: 'expireLease'; id: string };

const amount = fc.integer({ min: 1, max: 40 });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const key = maybe(fc.constantFrom('k1', 'k2', 'k3'));
const holdId = fc.constantFrom('r1', 'r2', 'r3');
const leaseId = fc.constantFrom('l1', 'l2');
const owner = fc.constantFrom('a', 'b');

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const step: fc.Arbitrary<Step> = fc.oneof(
  w(2, fc.record({ op: fc.constant('topUp' as const), amount, key }, { requiredKeys: ['op', 'amount'] })),
  w(2, fc.record({ op: fc.constant('tryConsume' as const), amount, key }, { requiredKeys: ['op', 'amount'] })),
  w(1, fc.record({ op: fc.constant('setAvailable' as const), available: fc.integer({ min: 0, max: 120 }) })),
  w(4, fc.record({ op: fc.constant('reserve' as const), amount, id: holdId })),
  w(4, fc.record({ op: fc.constant('commit' as const), id: holdId, amount: maybe(amount) }, { requiredKeys: ['op', 'id'] })),
  w(3, fc.record({ op: fc.constant('cancel' as const), id: holdId })),
  w(1, fc.record({ op: fc.constant('expireHold' as const), id: holdId })),
  w(4, fc.record({ op: fc.constant('allocate' as const), amount, id: leaseId, owner })),
  w(
    4,
    fc.record(
      { op: fc.constant('consumeChunk' as const), id: leaseId, amount: fc.integer({ min: 1, max: 20 }), owner, opId: maybe(fc.constantFrom('o1', 'o2')) },
      { requiredKeys: ['op', 'id', 'amount', 'owner'] },
    ),
  ),
  w(1, fc.record({ op: fc.constant('renew' as const), id: leaseId, owner })),
  w(2, fc.record({ op: fc.constant('release' as const), id: leaseId, owner })),
  w(1, fc.record({ op: fc.constant('expireLease' as const), id: leaseId })),
);

/** The rules of the spec, in memory. Results carry no operation ids: those are checked apart. */
class Model {
  available = 0;
  reserved = 0;
  leased = 0;
  consumed = 0;
  supplied = 0;
  holds = new Map<string, { amount: number; status: 'pending' | 'committed' | 'cancelled' | 'expired'; committed?: unknown }>();
  leases = new Map<string, { owner: string; granted: number; remaining: number; status: 'active' | 'released' | 'expired' }>();
  idem = new Map<string, { kind: string; amount: number; result: unknown }>();
  ops = new Map<string, { lease: string; owner: string; amount: number; result: unknown }>();

  apply(s: Step): unknown {
    switch (s.op) {
      case 'topUp': {
        const prev = s.key ? this.idem.get(s.key) : undefined;
        if (prev) return prev.kind === 'topup' && prev.amount === s.amount ? prev.result : fail('IDEMPOTENCY_CONFLICT');
        this.available += s.amount;
        this.supplied += s.amount;
        const result = { added: s.amount, available: this.available };
        if (s.key) this.idem.set(s.key, { kind: 'topup', amount: s.amount, result });
        return result;
      }
      case 'tryConsume': {
        const prev = s.key ? this.idem.get(s.key) : undefined;
        if (prev) return prev.kind === 'consume' && prev.amount === s.amount ? prev.result : fail('IDEMPOTENCY_CONFLICT');
        const applied = this.available >= s.amount;
        if (applied) {
          this.available -= s.amount;
          this.consumed += s.amount;
        }
        const result = { applied, remaining: this.available };
        if (s.key) this.idem.set(s.key, { kind: 'consume', amount: s.amount, result });
        return result;
      }
      case 'setAvailable':
        this.supplied += s.available - this.available;
        this.available = s.available;
        return this.balances();
      case 'reserve': {
        const hold = this.holds.get(s.id);
        if (hold?.status === 'pending') return hold.amount === s.amount ? { amount: hold.amount } : fail('IDEMPOTENCY_CONFLICT');
        if (hold?.status === 'expired') return fail('RESERVATION_EXPIRED');
        if (hold?.status === 'committed') return fail('RESERVATION_ALREADY_COMMITTED');
        if (hold?.status === 'cancelled') return fail('IDEMPOTENCY_CONFLICT');
        if (this.available < s.amount) return fail('INSUFFICIENT_QUOTA');
        this.available -= s.amount;
        this.reserved += s.amount;
        this.holds.set(s.id, { amount: s.amount, status: 'pending' });
        return { amount: s.amount };
      }
      case 'commit': {
        const hold = this.holds.get(s.id);
        if (!hold || hold.status === 'cancelled') return fail('RESERVATION_NOT_FOUND');
        if (hold.status === 'expired') return fail('RESERVATION_EXPIRED');
        if (hold.status === 'committed') {
          const done = hold.committed as { amount: number };
          return s.amount !== undefined && s.amount !== done.amount ? fail('IDEMPOTENCY_CONFLICT') : done;
        }
        const take = s.amount ?? hold.amount;
        if (take > hold.amount) return fail('INVALID_ARGUMENT');
        this.reserved -= hold.amount;
        this.consumed += take;
        this.available += hold.amount - take;
        hold.status = 'committed';
        hold.committed = { applied: true, amount: take, remaining: this.available };
        return hold.committed;
      }
      case 'cancel': {
        const hold = this.holds.get(s.id);
        if (hold?.status === 'pending') {
          this.available += hold.amount;
          this.reserved -= hold.amount;
          hold.status = 'cancelled';
          return true;
        }
        return hold?.status === 'cancelled' || hold?.status === 'expired';
      }
      case 'expireHold': {
        const hold = this.holds.get(s.id);
        if (hold?.status === 'pending') {
          this.available += hold.amount;
          this.reserved -= hold.amount;
          hold.status = 'expired';
        }
        return undefined;
      }
      case 'allocate': {
        const lease = this.leases.get(s.id);
        if (lease?.status === 'active') {
          return lease.owner === s.owner && lease.granted === s.amount ? this.lease(lease) : fail('IDEMPOTENCY_CONFLICT');
        }
        if (lease) return fail(lease.status === 'expired' ? 'LEASE_EXPIRED' : 'LEASE_ALREADY_RELEASED');
        if (this.available < s.amount) return fail('INSUFFICIENT_QUOTA');
        this.available -= s.amount;
        this.leased += s.amount;
        const created = { owner: s.owner, granted: s.amount, remaining: s.amount, status: 'active' as const };
        this.leases.set(s.id, created);
        return this.lease(created);
      }
      case 'consumeChunk': {
        const prev = s.opId ? this.ops.get(s.opId) : undefined;
        if (prev) return prev.lease === s.id && prev.owner === s.owner && prev.amount === s.amount ? prev.result : fail('IDEMPOTENCY_CONFLICT');
        const lease = this.leases.get(s.id);
        const gone = this.gone(lease);
        if (gone) return gone;
        if (lease!.owner !== s.owner) return fail('LEASE_OWNERSHIP_MISMATCH');
        const applied = lease!.remaining >= s.amount;
        if (applied) {
          lease!.remaining -= s.amount;
          this.leased -= s.amount;
          this.consumed += s.amount;
        }
        const result = { applied, remaining: lease!.remaining };
        if (s.opId) this.ops.set(s.opId, { lease: s.id, owner: s.owner, amount: s.amount, result });
        return result;
      }
      case 'renew': {
        const lease = this.leases.get(s.id);
        const gone = this.gone(lease);
        if (gone) return gone;
        return lease!.owner === s.owner ? this.lease(lease!) : fail('LEASE_OWNERSHIP_MISMATCH');
      }
      case 'release': {
        const lease = this.leases.get(s.id);
        // A second release returns the first one's result.
        if (lease?.status === 'released') return lease.owner === s.owner ? this.lease(lease) : fail('LEASE_OWNERSHIP_MISMATCH');
        const gone = this.gone(lease);
        if (gone) return gone;
        if (lease!.owner !== s.owner) return fail('LEASE_OWNERSHIP_MISMATCH');
        this.available += lease!.remaining;
        this.leased -= lease!.remaining;
        lease!.status = 'released';
        return this.lease(lease!);
      }
      case 'expireLease': {
        const lease = this.leases.get(s.id);
        if (lease?.status === 'active') {
          this.available += lease.remaining;
          this.leased -= lease.remaining;
          lease.status = 'expired';
        }
        return undefined;
      }
    }
  }

  balances() {
    const { available, reserved, leased, consumed, supplied } = this;
    return { available, reserved, leased, consumed, supplied };
  }

  private gone(lease: { status: string } | undefined): unknown {
    if (!lease) return fail('LEASE_NOT_FOUND');
    if (lease.status === 'expired') return fail('LEASE_EXPIRED');
    if (lease.status === 'released') return fail('LEASE_ALREADY_RELEASED');
    return undefined;
  }

  private lease(l: { owner: string; granted: number; remaining: number; status: string }) {
    return { ownerId: l.owner, granted: l.granted, remaining: l.remaining, status: l.status };
  }
}

function fail(code: string) {
  return { error: code };
}

describe.each(TARGETS)('Quota against an in-memory model on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('agrees with the model on every result, error and balance, and the invariant always holds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 60, size: 'max' }), async (steps) => {
        const prefix = uniquePrefix();
        const quota = new Quota(client, { prefix });
        const keys = resourceKeys(prefix, 'r').common;
        const model = new Model();
        // Start with quota, so holds and leases are mostly granted.
        steps.unshift({ op: 'topUp', amount: 100 });
        // Operation ids handed out by the real system, by idempotency key / hold id / op id.
        const operationIds = new Map<string, string>();
        const holdExpiry = new Map<string, number>();
        for (const s of steps) {
          const expected = model.apply(s);
          const actual = await run(client, quota, keys, s).catch((e: unknown) => {
            if (XRedisError.isInstance(e)) return { error: e.code };
            throw e;
          });
          const { operationId, expiresAtMs, reservationId: _r, resource: _res, leaseId: _l, version: _v, ...rest } = (actual ?? {}) as Record<string, unknown>;
          const comparable = typeof actual === 'object' && actual !== null ? rest : actual;
          expect({ step: s, result: comparable }).toEqual({ step: s, result: expected });
          // Replays return the first operation id; a pending hold's replay its first expiry.
          const replayKey = s.op === 'commit' ? `hold:${s.id}` : 'key' in s && s.key ? `idem:${s.key}` : undefined;
          if (typeof operationId === 'string' && replayKey) {
            if (!operationIds.has(replayKey)) operationIds.set(replayKey, operationId);
            expect(operationId).toBe(operationIds.get(replayKey));
          }
          if (s.op === 'reserve' && typeof expiresAtMs === 'number') {
            if (!holdExpiry.has(s.id)) holdExpiry.set(s.id, expiresAtMs);
            expect(expiresAtMs).toBe(holdExpiry.get(s.id));
          }
          const state = await quota.getState('r');
          const { resource: _, version: __, ...balances } = state;
          expect(balances).toEqual(model.balances());
          expect(state.available + state.reserved + state.leased + state.consumed).toBe(state.supplied);
          expect(state.available).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 30 },
    );
  });
});

async function run(client: TestClient, quota: Quota, keys: readonly string[], s: Step): Promise<unknown> {
  const opts = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  switch (s.op) {
    case 'topUp':
      return quota.topUp('r', s.amount, opts({ idempotencyKey: s.key }));
    case 'tryConsume':
      return quota.tryConsume('r', s.amount, opts({ idempotencyKey: s.key }));
    case 'setAvailable': {
      const { resource: _, version: __, ...balances } = await quota.setAvailable('r', s.available);
      return balances;
    }
    case 'reserve': {
      const hold = await quota.reserve('r', s.amount, { reservationId: s.id, ttlMs: 60_000 });
      return { amount: hold.amount, expiresAtMs: hold.expiresAtMs };
    }
    case 'commit':
      return quota.commit('r', s.id, opts({ amount: s.amount }));
    case 'cancel':
      return quota.cancel('r', s.id);
    case 'expireHold':
      // White box: move the hold's expiry into the past; the next call must reclaim it.
      await client.zAdd(keys[2]!, { score: 0, value: s.id }, { XX: true });
      await client.hSet(keys[0]!, 'next', '0');
      return undefined;
    case 'allocate':
      return lease(await quota.allocateChunk('r', s.amount, { leaseId: s.id, ownerId: s.owner, ttlMs: 60_000 }));
    case 'consumeChunk': {
      const r = await quota.consumeChunk('r', s.id, s.amount, opts({ ownerId: s.owner, operationId: s.opId }));
      return { applied: r.applied, remaining: r.remaining };
    }
    case 'renew':
      return lease(await quota.renewChunk('r', s.id, { ownerId: s.owner, ttlMs: 60_000 }));
    case 'release':
      return lease(await quota.releaseChunk('r', s.id, { ownerId: s.owner }));
    case 'expireLease':
      await client.zAdd(keys[4]!, { score: 0, value: s.id }, { XX: true });
      await client.hSet(keys[0]!, 'next', '0');
      return undefined;
  }
}

function lease(l: ChunkLease) {
  return { ownerId: l.ownerId, granted: l.granted, remaining: l.remaining, status: l.status };
}

