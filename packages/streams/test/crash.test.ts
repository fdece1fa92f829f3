import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, spawnWorker, uniquePrefix, type TestClient, type Target } from '@x/testing';
import { StreamProducer } from '../src';
import { groupKeys } from '../src/keys';
import { entries, groupHash, keysOf, until } from './helpers';

// The issue asks for 10,000 messages per run; that fits the time budget here (about a second of
// processing per run), so it is not scaled down.
const TOTAL = 10_000;
const FIXTURE = require.resolve('./fixtures/processor.cjs');

interface Outcome {
  state: unknown;
  out: Array<Record<string, string>>;
  fives: Array<Record<string, string>>;
  pending: number;
  dead: number;
}

describe.each(TARGETS)('crash recovery on %s', (target) => {
  let client: TestClient;
  let reference: Outcome;

  function env(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
    return { TARGET: target satisfies Target, PREFIX: prefix, TOTAL: String(TOTAL), BATCH: '50', LEASE_MS: '1000', ...extra };
  }

  async function fill(prefix: string, n = TOTAL, raw = false): Promise<void> {
    const producer = new StreamProducer(client, { prefix });
    // The publish script is loaded first: concurrent EVALSHAs racing their own NOSCRIPT fallback
    // (EVAL) could otherwise land out of order.
    if (!raw) await producer.publish('warm-up', { i: '-1' });
    for (let from = 0; from < n; from += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, n - from) }, (_, j) => {
          const fields = { i: String(from + j), v: String(((from + j) * 7) % 13) };
          // Raw: plain XADD, as another service would write the stream.
          return raw ? client.xAdd(`${prefix}:streams:raw`, '*', fields) : producer.publish('sales', fields);
        }),
      );
    }
  }

  /** The keys of the fixture's group: named streams, or (RAW=1) raw keys. */
  function fixtureKeys(prefix: string, raw = false) {
    if (!raw) return keysOf(prefix, 'sales', 'tracker');
    const key = `${prefix}:streams:raw`;
    const g = groupKeys(prefix, 'default', { key }, 'tracker', undefined);
    return { stream: g.stream, group: g.group, dead: g.dead, out: (name: string) => `${prefix}:streams:{${key}}:${name}` };
  }

  async function outcome(prefix: string, raw = false): Promise<Outcome> {
    const k = fixtureKeys(prefix, raw);
    const stored = await groupHash(client, k.group);
    return {
      state: JSON.parse(stored.state ?? 'null'),
      out: (await entries(client, k.out('out'))).map((e) => e.fields),
      fives: (await entries(client, k.out('fives'))).map((e) => e.fields),
      pending: ((await client.xPending(k.stream, 'tracker')) as { pending: number }).pending,
      dead: await client.xLen(k.dead),
    };
  }

  async function runToEnd(prefix: string, extra: Record<string, string> = {}): Promise<void> {
    const worker = spawnWorker(FIXTURE, { env: env(prefix, extra) });
    const code = await worker.exited();
    expect({ code, fatal: worker.reports.filter((r) => (r as { fatal?: string }).fatal) }).toEqual({ code: 0, fatal: [] });
  }

  beforeAll(async () => {
    client = await connect(target);
    const prefix = uniquePrefix();
    await fill(prefix);
    await runToEnd(prefix);
    reference = await outcome(prefix);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('the crash-free reference run handled every message once, in order', () => {
    expect(reference.state).toMatchObject({ count: TOTAL });
    expect(reference.out).toHaveLength(TOTAL);
    expect(reference.out.map((f) => Number(f.i))).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
    expect(reference.fives).toHaveLength(TOTAL / 5);
    expect([reference.pending, reference.dead]).toEqual([0, 0]);
  });

  it.each([
    ['before-handler', 2_345],
    ['inside-handler', 4_567],
    ['before-commit', 6_789],
    ['after-commit', 8_123],
  ])('SIGKILLed at %s (message %i), restarted: state and output streams equal the crash-free run', async (point, at) => {
    const prefix = uniquePrefix();
    await fill(prefix);
    const doomed = spawnWorker(FIXTURE, { env: env(prefix, { CRASH_I: String(at) }), crashAt: point });
    await doomed.reached(point);
    await doomed.kill();
    const k = keysOf(prefix, 'sales', 'tracker');
    const before = await groupHash(client, k.group);
    // The kill really landed mid-run: some messages were committed, not all.
    const committed = JSON.parse(before.state ?? '{"count":0}').count as number;
    expect(committed).toBeLessThan(TOTAL);
    if (point === 'after-commit') expect(committed).toBeGreaterThan(at);
    else expect(committed).toBeLessThanOrEqual(at);
    await runToEnd(prefix);
    expect(await outcome(prefix)).toEqual(reference);
  });

  it('a raw key filled with XADD, SIGKILLed inside the handler and restarted: state and outputs equal the crash-free run', async () => {
    const prefix = uniquePrefix();
    await fill(prefix, TOTAL, true);
    const doomed = spawnWorker(FIXTURE, { env: env(prefix, { RAW: '1', CRASH_I: '5432' }), crashAt: 'inside-handler' });
    await doomed.reached('inside-handler');
    await doomed.kill();
    const committed = JSON.parse((await groupHash(client, fixtureKeys(prefix, true).group)).state ?? '{"count":0}').count as number;
    expect(committed).toBeLessThanOrEqual(5432);
    await runToEnd(prefix, { RAW: '1' });
    expect(await outcome(prefix, true)).toEqual(reference);
  });

  it('a paused processor whose lease was taken over cannot commit (a zombie)', async () => {
    const prefix = uniquePrefix();
    const total = 300;
    await fill(prefix, total);
    const zombie = spawnWorker(FIXTURE, { env: { ...env(prefix), TOTAL: String(total), BATCH: '10', ZOMBIE_I: '123', ZOMBIE_SLEEP_MS: '10000' } });
    try {
      await zombie.reached('zombie-paused');
      zombie.child.kill('SIGSTOP');
      const successor = spawnWorker(FIXTURE, { env: { ...env(prefix), TOTAL: String(total), BATCH: '10' } });
      expect(await successor.exited()).toBe(0);
      const k = keysOf(prefix, 'sales', 'tracker');
      const done = await outcome(prefix);
      zombie.child.kill('SIGCONT');
      await until(() => zombie.reports.some((r) => (r as { error?: string }).error === 'STREAM_FENCED'), 'the zombie’s commit was refused');
      expect(await outcome(prefix)).toEqual(done);
      expect(done.state).toMatchObject({ count: total });
      expect(done.out.map((f) => f.i)).toEqual(Array.from({ length: total }, (_, i) => String(i)));
      expect(done.out.some((f) => 'zombie' in f)).toBe(false);
      expect(await client.xLen(k.out('out'))).toBe(total);
    } finally {
      zombie.child.kill('SIGCONT');
      await zombie.kill();
    }
  });
});

describe.each(TARGETS)('crash recovery in competing mode on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it.each([
    ['inside-handler', 3_456],
    ['after-commit', 7_654],
  ])('one of two consumers SIGKILLed at %s (message %i): every output exactly once after the survivor claims its messages', async (point, at) => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'sales', 'tracker');
    const producer = new StreamProducer(client, { prefix });
    for (let from = 0; from < TOTAL; from += 500) {
      await Promise.all(Array.from({ length: Math.min(500, TOTAL - from) }, (_, j) => producer.publish('sales', { i: String(from + j), v: '1' })));
    }
    const env = { TARGET: target, PREFIX: prefix, TOTAL: String(TOTAL), BATCH: '50', MODE: 'competing', CLAIM_IDLE_MS: '1000' };
    const doomed = spawnWorker(FIXTURE, { env: { ...env, CRASH_I: String(at) }, crashAt: point });
    // The second consumer joins once the first is at its crash message: started together, the
    // one that connects first could drain the stream alone.
    await doomed.reached('before-handler');
    const survivor = spawnWorker(FIXTURE, { env });
    try {
      await doomed.reached(point);
      await doomed.kill();
      await until(
        async () => (await client.xLen(k.out('out'))) >= TOTAL && ((await client.xPending(k.stream, 'tracker')) as { pending: number }).pending === 0,
        'the survivor finished, claimed messages included',
        60_000,
      );
      survivor.child.kill('SIGTERM');
      expect(await survivor.exited()).toBe(0);
      const out = (await entries(client, k.out('out'))).map((e) => Number(e.fields.i)).sort((a, b) => a - b);
      expect(out).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
      const fives = (await entries(client, k.out('fives'))).map((e) => Number(e.fields.i)).sort((a, b) => a - b);
      expect(fives).toEqual(Array.from({ length: TOTAL / 5 }, (_, i) => i * 5));
      expect(await client.xLen(k.dead)).toBe(0);
    } finally {
      await doomed.kill();
      await survivor.kill();
    }
  });
});
