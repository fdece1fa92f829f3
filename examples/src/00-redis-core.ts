import { LUA_HELPERS, WakeBus, defineScript, keyspace, waitFor, XRedisError } from '@x/redis-core';
import type { Example } from './demo';

// A one-shot gate built from redis-core alone: `open` sets a key and wakes every waiter in the
// same script; waiters wait without polling and return as soon as the message arrives.
const open = defineScript({
  name: 'demo.open',
  keys: ['gate'],
  source: LUA_HELPERS + `
    if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ALREADY_OPEN gate was opened before') end
    redis.call('SET', KEYS[1], ARGV[2], 'PX', 60000)
    wake(ARGV[1], '* open')
    return now_ms()`,
});
const check = defineScript({ name: 'demo.check', keys: ['gate'], source: `return redis.call('GET', KEYS[1])` });

const demo: Example = async (client) => {
  const gate = keyspace('demo', 'gate', `run-${Date.now()}`);
  console.log(`keys of this gate share one hash tag: ${gate.key('state')} / channel ${gate.channel}`);
  const waiters = [1, 2, 3].map(async (n) => {
    const opener = await waitFor<string>({
      client,
      channel: gate.channel,
      target: `waiter-${n}`,
      timeoutMs: 5_000,
      timeoutError: () => new Error('gate stayed shut'),
      attempt: async () => {
        const who = (await check.run(client, [gate.key('state')])) as string | null;
        return who ? { done: who } : { retryInMs: 1_000 };
      },
    });
    console.log(`waiter ${n} woke up: the gate was opened by ${opener}`);
  });
  await new Promise((r) => setTimeout(r, 100));
  console.log(`${WakeBus.for(client).listenerCount} waiters parked on one subscriber connection`);
  const at = await open.run(client, [gate.key('state')], [gate.channel, 'the demo']);
  console.log(`opened at server time ${new Date(at as number).toISOString()}`);
  await Promise.all(waiters);
  try {
    await open.run(client, [gate.key('state')], [gate.channel, 'someone else']);
  } catch (error) {
    if (XRedisError.isInstance(error)) console.log(`opening twice is refused with a typed error: [${error.code}] ${error.message}`);
    else throw error;
  }
};
export default demo;
