import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, settle, uniquePrefix, until, type TestClient } from '@x/testing';
import { RateLimitTimeoutError, RateLimiter } from '../src';
import { ALGORITHMS, HOUR, counting, fill, sleep } from './helpers';


describe.each(TARGETS)('RateLimiter.waitFor on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it.each(ALGORITHMS)('%s: waits the retry time the server computed, then is admitted and charged', async (algorithm) => {
    const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), algorithm, limits: [{ limit: 2, windowMs: 1_000 }] });
    expect((await fill(limiter, 'k')).allowed).toBe(false);
    const d = await limiter.waitFor('k', { timeoutMs: 10_000 });
    expect(d.allowed).toBe(true);
    expect(d.retryAfterMs).toBe(0);
    expect(d.remaining).toBeLessThan(2);
  });

  it('is woken by a refund long before its retry time, with no polling in between', async () => {
    const { client: c, scripts } = counting(client);
    const limiter = new RateLimiter(c, 'api', { prefix: uniquePrefix(), limits: [{ limit: 2, windowMs: HOUR }] });
    await limiter.limit('k', { cost: 2 });
    const before = scripts();
    const waiting = limiter.waitFor('k', { timeoutMs: 30_000 });
    // One attempt before subscribing and one after: then it sleeps (a retry time of half an hour).
    await until(() => scripts() - before >= 2);
    await sleep(300);
    expect(scripts() - before).toBe(2);
    await limiter.refund('k', 1);
    const d = await waiting;
    await WakeBus.close(c);
    expect(d.allowed).toBe(true);
    expect(d.remaining).toBe(0);
  });

  it('is woken by a reset from another limiter instance', async () => {
    const prefix = uniquePrefix();
    const limits = [{ limit: 1, windowMs: HOUR }];
    const limiter = new RateLimiter(client, 'api', { prefix, limits });
    await limiter.limit('k');
    const waiting = settle(limiter.waitFor('k', { timeoutMs: 30_000 }));
    await sleep(100);
    await new RateLimiter(client, 'api', { prefix, limits }).reset('k');
    const outcome = await waiting;
    expect(outcome.ok && outcome.value.allowed).toBe(true);
  });

  it('times out with RateLimitTimeoutError and charges nothing', async () => {
    const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), limits: [{ limit: 3, windowMs: HOUR }] });
    await limiter.limit('k', { cost: 2 });
    const error = await limiter.waitFor('k', { cost: 2, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitTimeoutError);
    expect(error).toMatchObject({ code: 'RATE_LIMIT_TIMEOUT', key: 'k', timeoutMs: 50 });
    expect((await limiter.peek('k')).remaining).toBe(1);
  });

  it('rejects with the reason of an aborted signal and charges nothing', async () => {
    const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), limits: [{ limit: 1, windowMs: HOUR }] });
    await limiter.limit('k');
    const controller = new AbortController();
    const waiting = settle(limiter.waitFor('k', { signal: controller.signal }));
    await sleep(50);
    controller.abort(new Error('shutting down'));
    const outcome = await waiting;
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && (outcome.error as Error).message).toBe('shutting down');
    expect((await limiter.peek('k')).remaining).toBe(0);
  });

  it('rejects bad options with InvalidArgumentError', async () => {
    const limiter = new RateLimiter(client, 'api', { prefix: uniquePrefix(), limits: [{ limit: 2, windowMs: HOUR }] });
    await expect(limiter.waitFor('k', { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(limiter.waitFor('k', { cost: 3 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(limiter.waitFor('k', { signal: {} as AbortSignal })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(limiter.waitFor('')).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
