import fc from 'fast-check';
import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { RateLimiter, type RateLimit, type RateLimitAlgorithm, type RateLimitDecision } from '../src';
import { ALGORITHMS, sleep } from './helpers';
import { KeyModel, overAdmission, refundHistory, type Admission, type Expected } from './model';

type Step =
  | { op: 'limit'; cost: number }
  | { op: 'peek'; cost: number }
  | { op: 'refund'; cost: number }
  | { op: 'reset' }
  | { op: 'sleep'; ms: number };

const LIMITS: RateLimit[] = [
  { limit: 4, windowMs: 40 },
  { limit: 7, windowMs: 150 },
];

const cost = fc.integer({ min: 1, max: 4 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('limit' as const), cost }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('peek' as const), cost }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('refund' as const), cost }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reset' as const }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('sleep' as const), ms: fc.integer({ min: 1, max: 45 }) }) },
);

function observed(d: RateLimitDecision): Expected {
  return { allowed: d.allowed, retryAfterMs: d.retryAfterMs, policies: d.policies.map((p) => ({ remaining: p.remaining, resetAt: p.resetAt })) };
}

describe.each(TARGETS)('RateLimiter against an in-memory model on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it.each(ALGORITHMS)('%s: every reply matches the model at the server time, and no window holds more than allowed', async (algorithm: RateLimitAlgorithm) => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), async (steps) => {
        const limiter = new RateLimiter(client, 'model', { prefix: uniquePrefix(), algorithm, limits: LIMITS });
        const model = new KeyModel(algorithm, LIMITS);
        let history: Admission[] = [];
        for (const s of steps) {
          if (s.op === 'sleep') {
            await sleep(s.ms);
            continue;
          }
          if (s.op === 'reset') {
            await limiter.reset('k');
            model.reset();
            history = [];
            continue;
          }
          const { decision, serverTimeUs } = await limiter.run(s.op, 'k', s.cost);
          const expected = s.op === 'refund' ? model.refund(serverTimeUs, s.cost) : model.decide(serverTimeUs, s.cost, s.op === 'limit');
          expect({ step: s, ...observed(decision) }).toEqual({ step: s, ...expected });
          if (s.op === 'limit' && decision.allowed) history.push({ t: serverTimeUs, c: s.cost });
          if (s.op === 'refund') refundHistory(history, s.cost);
          for (const l of LIMITS) expect(overAdmission(algorithm, l, history)).toBeNull();
          // The decision reports one of its policies as the tightest.
          expect(decision.policies).toContainEqual({ limit: decision.limit, windowMs: decision.windowMs, remaining: decision.remaining, resetAt: decision.resetAt });
        }
      }),
      { numRuns: 12 },
    );
  }, 240_000);
});
