import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { RateLimiter } from '../src';
import { ALGORITHMS, HOUR, counting, fill, sleep } from './helpers';


describe.each(TARGETS)('RateLimiter with a deny cache on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('refuses a refused key again for that cost or more with no round trip', async () => {
    const { client: c, scripts } = counting(client);
    const limiter = new RateLimiter(c, 'api', { prefix: uniquePrefix(), denyCache: true, limits: [{ limit: 3, windowMs: HOUR }] });
    await limiter.limit('k', { cost: 2 });
    const refused = await limiter.limit('k', { cost: 2 });
    expect(refused.allowed).toBe(false);
    const sent = scripts();
    for (const cost of [2, 3, 2]) {
      const d = await limiter.limit('k', { cost });
      expect(d.allowed).toBe(false);
      expect(d.retryAfterMs).toBeGreaterThan(0);
      expect(d.retryAfterMs).toBeLessThanOrEqual(refused.retryAfterMs);
    }
    expect(scripts()).toBe(sent);
    // A smaller cost may fit: it goes to the server, and is admitted.
    expect((await limiter.limit('k', { cost: 1 })).allowed).toBe(true);
    expect(scripts()).toBe(sent + 1);
    // Bad input is still bad input.
    await expect(limiter.limit('k', { cost: 4 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it.each(ALGORITHMS)('%s: asks the server again once the retry time has passed', async (algorithm) => {
    const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), algorithm, denyCache: true, limits: [{ limit: 2, windowMs: 1_000 }] });
    const refused = await fill(limiter, 'k');
    expect(refused.allowed).toBe(false);
    await sleep(refused.retryAfterMs + 5);
    expect((await limiter.limit('k')).allowed).toBe(true);
  });

  it('forgets a key on refund and reset through the same limiter', async () => {
    const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), denyCache: { maxKeys: 100 }, limits: [{ limit: 1, windowMs: HOUR }] });
    await limiter.limit('k');
    expect((await limiter.limit('k')).allowed).toBe(false);
    await limiter.refund('k');
    expect((await limiter.limit('k')).allowed).toBe(true);
    expect((await limiter.limit('k')).allowed).toBe(false);
    await limiter.reset('k');
    expect((await limiter.limit('k')).allowed).toBe(true);
  });

  it('never admits more than the limit with many calls in flight', async () => {
    const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), denyCache: true, limits: [{ limit: 10, windowMs: HOUR }] });
    const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.limit('hot')));
    const again = await Promise.all(Array.from({ length: 200 }, () => limiter.limit('hot')));
    expect([...decisions, ...again].filter((d) => d.allowed)).toHaveLength(10);
  });

  it('keeps at most maxKeys refusals, dropping the oldest', async () => {
    const { client: c, scripts } = counting(client);
    const limiter = new RateLimiter(c, 'api', { prefix: uniquePrefix(), denyCache: { maxKeys: 2 }, limits: [{ limit: 1, windowMs: HOUR }] });
    for (const key of ['a', 'b', 'c']) {
      await limiter.limit(key);
      await limiter.limit(key);
    }
    const sent = scripts();
    await limiter.limit('b');
    await limiter.limit('c');
    expect(scripts()).toBe(sent);
    expect((await limiter.limit('a')).allowed).toBe(false);
    expect(scripts()).toBe(sent + 1);
  });

  it('rejects a bad denyCache option with InvalidArgumentError', () => {
    const limits = [{ limit: 1, windowMs: 1_000 }];
    expect(() => new RateLimiter(client, 'a', { limits, denyCache: { maxKeys: 0 } })).toThrow(InvalidArgumentError);
    expect(() => new RateLimiter(client, 'a', { limits, denyCache: 'yes' as never })).toThrow(InvalidArgumentError);
  });
});
