import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, spawnWorker, uniquePrefix, type TestClient } from '@x/testing';
import type { RateLimit, RateLimitAlgorithm } from '../src';
import { ALGORITHMS } from './helpers';
import { overAdmission, type Admission } from './model';

const PROCESSES = 20;
const CONCURRENCY = 5;
const LIMITS: RateLimit[] = [
  { limit: 30, windowMs: 100 },
  { limit: 100, windowMs: 500 },
];

interface Phase {
  algorithm: RateLimitAlgorithm;
  admitted: Array<[number, number]>;
  refused: number;
}

describe.each(TARGETS)('RateLimiter under 20 processes firing at one key on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('never admits more than any algorithm allows in any window', async () => {
    const prefix = uniquePrefix();
    const workers = Array.from({ length: PROCESSES }, () =>
      spawnWorker(require.resolve('./fixtures/firer.cjs'), {
        env: {
          X_TARGET: target,
          X_PREFIX: prefix,
          X_ALGORITHMS: ALGORITHMS.join(','),
          X_LIMITS: JSON.stringify(LIMITS),
          X_DURATION_MS: '700',
          X_CONCURRENCY: String(CONCURRENCY),
        },
      }),
    );
    await Promise.all(workers.map((w) => w.reached('ready', 240_000)));
    await client.set(`${prefix}:ratelimit:go`, '1');
    expect(await Promise.all(workers.map((w) => w.exited()))).toEqual(workers.map(() => 0));
    for (const algorithm of ALGORITHMS) {
      const phases = workers.map((w) => (w.reports as Phase[]).find((r) => r.algorithm === algorithm)!);
      const history: Admission[] = phases.flatMap((p) => p.admitted.map(([t, c]) => ({ t, c })));
      const refused = phases.reduce((n, p) => n + p.refused, 0);
      // The limits were reached: they, not the load, held admissions back.
      expect(history.length).toBeGreaterThan(0);
      expect(refused).toBeGreaterThan(0);
      for (const l of LIMITS) expect({ algorithm, limit: l, violation: overAdmission(algorithm, l, history) }).toEqual({ algorithm, limit: l, violation: null });
    }
  }, 300_000);
});
