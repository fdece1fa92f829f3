import { defineScript, keyspace } from '@x/redis-core';
import type { BenchCase } from '../harness';

const source = `return redis.call('INCR', KEYS[1])`;
const incr = defineScript({ name: 'bench.incr', keys: ['n'], source });

/** The cost redis-core adds to a script call: defineScript.run against a raw evalSha. */
const benchCase: BenchCase = {
  name: 'redis-core: one script call (INCR)',
  async run(ctx) {
    const client = await ctx.client();
    const key = keyspace('bench', 'core', 'n').key('n');
    const sha = await client.scriptLoad(source);
    const raw = await ctx.measure('raw node-redis evalSha', () => client.evalSha(sha, { keys: [key] }), {
      iterations: 20_000,
      baseline: true,
    });
    const core = await ctx.measure('@x/redis-core script.run', () => incr.run(client, [key]), { iterations: 20_000 });
    const pipelined = await ctx.measure('@x/redis-core script.run, 16 in flight', () => incr.run(client, [key]), {
      iterations: 50_000,
      concurrency: 16,
    });
    return [raw, core, pipelined];
  },
};
export default benchCase;
