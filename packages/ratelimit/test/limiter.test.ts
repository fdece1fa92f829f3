import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { CorruptStateError, RateLimiter, type RateLimitAlgorithm } from '../src';
import { limitScript } from '../src/scripts';
import { ALGORITHMS, fill, keysUnder, sleep } from './helpers';

const HOUR = 3_600_000;

describe.each(TARGETS)('RateLimiter on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  describe.each(ALGORITHMS)('with %s', (algorithm: RateLimitAlgorithm) => {
    it('admits the limit at once, then refuses with a retry time, counting remaining down', async () => {
      const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), algorithm, limits: [{ limit: 5, windowMs: HOUR }] });
      const remaining: number[] = [];
      for (let i = 0; i < 5; i++) {
        const d = await limiter.limit('user:1');
        expect(d.allowed).toBe(true);
        expect(d.retryAfterMs).toBe(0);
        remaining.push(d.remaining);
      }
      expect(remaining).toEqual([4, 3, 2, 1, 0]);
      const refused = await limiter.limit('user:1');
      expect(refused).toMatchObject({ allowed: false, remaining: 0, limit: 5, windowMs: HOUR });
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(HOUR);
      expect(refused.resetAt).toBeGreaterThan(Date.now() - 60_000);
      // Another key is not affected.
      expect((await limiter.limit('user:2')).remaining).toBe(4);
    });

    it('charges nothing for a refused call, on any limit', async () => {
      const limiter = new RateLimiter(client, 'api', {
        prefix: uniquePrefix(),
        algorithm,
        limits: [
          { limit: 10, windowMs: HOUR },
          { limit: 4, windowMs: HOUR * 2 },
        ],
      });
      expect((await limiter.limit('k', { cost: 3 })).allowed).toBe(true);
      const before = await limiter.peek('k');
      expect(before.policies.map((p) => p.remaining)).toEqual([7, 1]);
      for (let i = 0; i < 5; i++) expect((await limiter.limit('k', { cost: 2 })).allowed).toBe(false);
      const after = await limiter.peek('k');
      expect(after.policies.map((p) => p.remaining)).toEqual([7, 1]);
      // What still fits is still admitted.
      expect((await limiter.limit('k', { cost: 1 })).allowed).toBe(true);
      expect((await limiter.peek('k')).policies.map((p) => p.remaining)).toEqual([6, 0]);
    });

    it('charges several limits all or nothing and reports the tightest', async () => {
      const limiter = new RateLimiter(client, 'api', {
        prefix: uniquePrefix(),
        algorithm,
        limits: [
          { limit: 3, windowMs: HOUR },
          { limit: 5, windowMs: HOUR * 2 },
        ],
      });
      const first = await limiter.limit('k', { cost: 2 });
      expect(first).toMatchObject({ allowed: true, remaining: 1, limit: 3 });
      const second = await limiter.limit('k', { cost: 2 });
      expect(second).toMatchObject({ allowed: false, limit: 3 });
      expect(second.policies.map((p) => p.remaining)).toEqual([1, 3]);
      const third = await limiter.limit('k', { cost: 1 });
      expect(third).toMatchObject({ allowed: true, remaining: 0, limit: 3 });
      expect(third.policies.map((p) => p.remaining)).toEqual([0, 2]);
    });

    it('refunds, never above the limit, and a refund makes room again', async () => {
      const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), algorithm, limits: [{ limit: 4, windowMs: HOUR }] });
      expect((await limiter.refund('fresh', 4)).remaining).toBe(4);
      expect((await limiter.peek('fresh')).remaining).toBe(4);
      expect((await limiter.limit('k', { cost: 4 })).allowed).toBe(true);
      expect((await limiter.limit('k')).allowed).toBe(false);
      expect((await limiter.refund('k', 1)).remaining).toBe(1);
      expect((await limiter.limit('k')).allowed).toBe(true);
      expect((await limiter.limit('k')).allowed).toBe(false);
      expect((await limiter.refund('k', 4)).remaining).toBe(4);
      expect((await limiter.refund('k', 4)).remaining).toBe(4);
      const d = await limiter.limit('k', { cost: 4 });
      expect(d.allowed).toBe(true);
      expect((await limiter.limit('k')).allowed).toBe(false);
    });

    it('peeks without consuming and resets to full', async () => {
      const prefix = uniquePrefix();
      const limiter = new RateLimiter(client, 'api', { prefix, algorithm, limits: [{ limit: 2, windowMs: HOUR }] });
      for (let i = 0; i < 5; i++) expect((await limiter.peek('k')).remaining).toBe(2);
      expect(await keysUnder(client, target, prefix)).toEqual([]);
      await limiter.limit('k', { cost: 2 });
      const peeked = await limiter.peek('k');
      expect(peeked).toMatchObject({ allowed: false, remaining: 0 });
      expect(peeked.retryAfterMs).toBeGreaterThan(0);
      await limiter.reset('k');
      expect(await keysUnder(client, target, prefix)).toEqual([]);
      expect((await limiter.limit('k', { cost: 2 })).allowed).toBe(true);
    });

    it('admits again once the server says so, and every key expires once full', async () => {
      const prefix = uniquePrefix();
      const limiter = new RateLimiter(client, 'api', { prefix, algorithm, limits: [{ limit: 2, windowMs: 1_000 }] });
      const refused = await fill(limiter, 'k');
      expect(refused.allowed).toBe(false);
      // One key, which expires within the window (a fixed window's key may be gone already).
      const keys = await keysUnder(client, target, prefix);
      expect(keys.length).toBeLessThanOrEqual(1);
      for (const key of keys) {
        const ttl = await client.pTTL(key);
        expect(ttl === -2 || (ttl > 0 && ttl <= 1_000)).toBe(true);
      }
      await sleep(refused.retryAfterMs + 5);
      expect((await limiter.limit('k')).allowed).toBe(true);
      await sleep(1_050);
      expect(await keysUnder(client, target, prefix)).toEqual([]);
    });

    it('keeps a key of one limiter in one hash tag, escaped', async () => {
      const prefix = uniquePrefix();
      const limiter = new RateLimiter(client, 'a{b}', { prefix, algorithm, limits: [{ limit: 2, windowMs: HOUR }, { limit: 9, windowMs: 1_000 }] });
      await limiter.limit('user:{7}');
      const keys = await keysUnder(client, target, prefix);
      expect(keys).toHaveLength(2);
      for (const key of keys) expect(key.startsWith(`${prefix}:ratelimit:a%7Bb%7D:{user:%7B7%7D}:`)).toBe(true);
    });

    it('refuses corrupt state with CorruptStateError and changes nothing', async () => {
      const prefix = uniquePrefix();
      const limiter = new RateLimiter(client, 'api', { prefix, algorithm, limits: [{ limit: 2, windowMs: HOUR }] });
      await limiter.limit('k');
      const [key] = await keysUnder(client, target, prefix);
      if (algorithm === 'sliding-window') await client.zAdd(key!, { score: (Date.now() + 60_000) * 1000, value: 'junk' });
      else await client.set(key!, 'junk');
      await expect(limiter.limit('k')).rejects.toBeInstanceOf(CorruptStateError);
      if (algorithm === 'sliding-window') expect(await client.zCard(key!)).toBe(2);
      else expect(await client.get(key!)).toBe('junk');
    });
  });

  describe('bad input', () => {
    const limits = [{ limit: 5, windowMs: 1_000 }];
    it.each([
      ['an empty name', () => new RateLimiter(client, '', { limits })],
      ['a name that is not a string', () => new RateLimiter(client, 7 as unknown as string, { limits })],
      ['no limits', () => new RateLimiter(client, 'a', { limits: [] })],
      ['limit 0', () => new RateLimiter(client, 'a', { limits: [{ limit: 0, windowMs: 1_000 }] })],
      ['a fractional limit', () => new RateLimiter(client, 'a', { limits: [{ limit: 1.5, windowMs: 1_000 }] })],
      ['a window of 0', () => new RateLimiter(client, 'a', { limits: [{ limit: 1, windowMs: 0 }] })],
      ['a window above 2^31 - 1', () => new RateLimiter(client, 'a', { limits: [{ limit: 1, windowMs: 2 ** 31 }] })],
      ['a repeated limit', () => new RateLimiter(client, 'a', { limits: [...limits, ...limits] })],
      ['an unknown algorithm', () => new RateLimiter(client, 'a', { limits, algorithm: 'leaky' as never })],
      ['a prefix with a brace', () => new RateLimiter(client, 'a', { limits, prefix: 'x{' })],
    ])('rejects %s at construction with InvalidArgumentError', (_, build) => {
      expect(build).toThrow(InvalidArgumentError);
    });

    it.each([
      ['cost 0', (l: RateLimiter) => l.limit('k', { cost: 0 })],
      ['a fractional cost', (l: RateLimiter) => l.limit('k', { cost: 1.5 })],
      ['a cost above the smallest limit', (l: RateLimiter) => l.limit('k', { cost: 6 })],
      ['a cost that is not a number', (l: RateLimiter) => l.limit('k', { cost: '2' as unknown as number })],
      ['an empty key', (l: RateLimiter) => l.limit('')],
      ['a key with a lone surrogate', (l: RateLimiter) => l.limit('\uD800')],
      ['a peek with cost 0', (l: RateLimiter) => l.peek('k', { cost: 0 })],
      ['a refund of 0', (l: RateLimiter) => l.refund('k', 0)],
      ['a refund above the smallest limit', (l: RateLimiter) => l.refund('k', 6)],
      ['a reset of an empty key', (l: RateLimiter) => l.reset('')],
    ])('rejects %s with InvalidArgumentError and writes nothing', async (_, call) => {
      const prefix = uniquePrefix();
      const limiter = new RateLimiter(client, 'api', { prefix, limits: [{ limit: 5, windowMs: 1_000 }, { limit: 50, windowMs: 60_000 }] });
      await expect(call(limiter)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await keysUnder(client, target, prefix)).toEqual([]);
    });

    it.each([
      ['an unknown algorithm', ['leaky', 1, 'c', 1, 5, 1000]],
      ['cost 0', ['gcra', 0, 'c', 1, 5, 1000]],
      ['a cost above the limit', ['fixed-window', 6, 'c', 1, 5, 1000]],
      ['a fractional cost', ['sliding-window', 1.5, 'c', 1, 5, 1000]],
      ['a window of 0', ['token-bucket', 1, 'c', 1, 5, 0]],
      ['a window above 2^31 - 1', ['gcra', 1, 'c', 1, 5, 2 ** 31]],
      ['a limit of 0', ['gcra', 1, 'c', 1, 0, 1000]],
      ['a limit count that does not match the keys', ['gcra', 1, 'c', 2, 5, 1000, 6, 1000]],
    ])('the script itself rejects %s before any write', async (_, args) => {
      const prefix = uniquePrefix();
      const key = `${prefix}:ratelimit:api:{k}:raw`;
      const algorithm = (ALGORITHMS as string[]).includes(String(args[0])) ? (args[0] as RateLimitAlgorithm) : 'gcra';
      await expect(limitScript(algorithm, 1).run(client, [key], args as (string | number)[])).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await keysUnder(client, target, prefix)).toEqual([]);
    });
  });
});
