import { RateLimitTimeoutError, RateLimiter } from '@x/ratelimit';
import type { Example } from './demo';

// Rate limits per user: two limits at once, weighted costs, a refund of unused cost, and a waiter
// woken by that refund instead of polling.
const demo: Example = async (client) => {
  const limiter = new RateLimiter(client, 'demo-api', {
    prefix: 'demo',
    limits: [
      { limit: 5, windowMs: 1_000 },
      { limit: 20, windowMs: 60_000 },
    ],
  });
  const user = `user:${Date.now()}`;
  try {
    const decisions = [];
    for (let i = 0; i < 7; i++) decisions.push(await limiter.limit(user));
    console.log(`7 calls against 5/s and 20/min: ${decisions.map((d) => (d.allowed ? 'ok' : 'refused')).join(', ')}`);
    const refused = decisions.at(-1)!;
    console.log(`refused by ${refused.limit} per ${refused.windowMs} ms: retry in ${refused.retryAfterMs} ms; ${refused.policies[1]!.remaining} left per minute (nothing charged)`);

    await limiter.reset(user);
    const big = await limiter.limit(user, { cost: 4 });
    console.log(`a call of cost 4: allowed ${big.allowed}, ${big.remaining} left this second`);
    const waiting = limiter.waitFor(user, { cost: 3, timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    await limiter.refund(user, 3); // the costly call used only 1 of its 4
    const woken = await waiting;
    console.log(`waitFor(cost 3) woken by the refund: allowed ${woken.allowed}, ${woken.remaining} left this second`);

    try {
      await limiter.waitFor(user, { cost: 5, timeoutMs: 50 });
    } catch (error) {
      if (RateLimitTimeoutError.isInstance(error)) console.log(`waitFor(cost 5, 50 ms) -> ${error.code}`);
      else throw error;
    }
  } finally {
    await limiter.reset(user);
  }
};

export default demo;
