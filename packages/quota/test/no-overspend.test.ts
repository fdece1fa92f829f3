import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, spawnWorker, uniquePrefix, type TestClient, type Worker } from '@x/testing';
import { Quota } from '../src';
import { expectBalanced, sleep } from './helpers';

const PROCESSES = 8;
const CONCURRENCY = 50;
const SUPPLY = 3_000;

interface Granted {
  direct: number;
  local: number;
  done?: boolean;
}

const last = (w: Worker): Granted => (w.reports.at(-1) as Granted | undefined) ?? { direct: 0, local: 0 };

function spawnSpenders(n: number, env: Record<string, string>): Worker[] {
  return Array.from({ length: n }, () =>
    spawnWorker(require.resolve('./fixtures/spender.cjs'), { env: { X_RESOURCE: 'credits', X_CONCURRENCY: String(CONCURRENCY), ...env } }),
  );
}

describe.each(TARGETS)('Quota spent by many processes at once on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('never spends more than was supplied, stays balanced, and frees every hold and lease of the dead', async () => {
    const prefix = uniquePrefix();
    const quota = new Quota(client, { prefix });
    await quota.topUp('credits', SUPPLY);
    const workers = spawnSpenders(PROCESSES, { X_TARGET: target, X_PREFIX: prefix, X_DURATION_MS: '1500' });
    await Promise.all(workers.map((w) => w.reached('running', 60_000)));
    await sleep(300);
    const killed = workers.slice(0, 3);
    const survivors = workers.slice(3);
    await Promise.all(killed.map((w) => w.kill()));
    // Mid-run, with the dead's holds and leases still out, the books balance.
    expectBalanced(await quota.getState('credits'));
    const codes = await Promise.all(survivors.map((w) => w.exited()));
    expect(codes).toEqual(survivors.map(() => 0));

    expect(survivors.every((w) => last(w).done === true)).toBe(true);
    const survivorsGranted = survivors.reduce((n, w) => n + last(w).direct + last(w).local, 0);
    // What a killed process reported from the direct path was applied in Redis before it heard back.
    const killedDirect = killed.reduce((n, w) => n + last(w).direct, 0);

    // The dead's holds (500 ms) and leases (1 s) expire; the next touch reclaims them.
    await sleep(1_300);
    const state = await quota.getState('credits');
    expectBalanced(state);
    expect(state.supplied).toBe(SUPPLY);
    expect(state.reserved).toBe(0);
    expect(state.leased).toBe(0);
    expect(state.consumed).toBeLessThanOrEqual(SUPPLY);
    expect(survivorsGranted + killedDirect).toBeGreaterThan(0);
    expect(survivorsGranted + killedDirect).toBeLessThanOrEqual(state.consumed);
  });

  it('accounts for every unit handed out, exactly, when no process dies', async () => {
    const prefix = uniquePrefix();
    const quota = new Quota(client, { prefix });
    await quota.topUp('credits', SUPPLY);
    const workers = spawnSpenders(3, { X_TARGET: target, X_PREFIX: prefix, X_DURATION_MS: '1000' });
    expect(await Promise.all(workers.map((w) => w.exited()))).toEqual([0, 0, 0]);
    const granted = workers.reduce((n, w) => n + last(w).direct + last(w).local, 0);
    await sleep(600); // abandoned holds expire
    const state = await quota.getState('credits');
    expectBalanced(state);
    expect(state.reserved).toBe(0);
    expect(state.leased).toBe(0);
    expect(state.consumed).toBe(granted);
    expect(state.available).toBe(SUPPLY - granted);
  });
});
