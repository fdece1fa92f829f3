/**
 * THE SMOKE TABLE: one real operation per published package, run by test/pack-install.test.ts
 * against a real Redis from the packed tarball, installed with npm into a fresh project outside the
 * workspace: once from CommonJS (`require`), once from ESM (`import`), and type-checked with
 * `tsc --noEmit` as both a .cts and a .mts file.
 *
 * A published package (packages/* without "private") with no entry here fails the check with
 * "no smoke operation for @x/foo". To add a package, add one entry:
 *
 *   '@x/foo': {
 *     imports: ['Foo'],              // value exports the code uses
 *     types: ['FooOptions'],         // type exports the typed code uses (type-checked only)
 *     code: `...`,                   // plain JavaScript that is also valid TypeScript
 *     typed: `...`,                  // optional TypeScript-only lines using the public types
 *   },
 *
 * `code` runs inside an async function with these in scope: `client` (a connected node-redis v6
 * client, RESP3), `prefix` (a random key prefix, pass it as the package's `prefix` option) and
 * `assert(condition, message)`. Throw (or fail an assert) when the operation did not do what it
 * promises; leave nothing waiting or held at the end, so the process exits by itself. `typed` is
 * appended to `code` in the type-checked files only and never runs.
 */
export const SMOKE: Record<string, SmokeOperation> = {
  '@x/redis-core': {
    imports: ['defineScript', 'keyspace', 'XRedisError'],
    types: ['Script', 'Keyspace', 'RedisClientLike'],
    code: `
const ks = keyspace(prefix, 'smoke', 'core');
const bump = defineScript({
  name: 'smoke.bump',
  keys: ['n'],
  source: "if ARGV[1] == 'fail' then return redis.error_reply('SMOKE_FAILED on purpose') end return redis.call('INCRBY', KEYS[1], ARGV[1])",
});
assert((await bump.run(client, [ks.key('n')], [2])) === 2, 'defineScript run returned the INCRBY reply');
assert((await bump.run(client, [ks.key('n')], [3])) === 5, 'a second run (EVALSHA) returned the INCRBY reply');
const error = await bump.run(client, [ks.key('n')], ['fail']).catch((e) => e);
assert(XRedisError.isInstance(error) && error.code === 'SMOKE_FAILED', 'a business error came back typed');
`,
    typed: `
const typedKs: Keyspace = ks;
const typedScript: Script = bump;
const typedClient: RedisClientLike = client;
const reply: Promise<unknown> = typedScript.run(typedClient, [typedKs.key('n')], [1]);
void reply;
`,
  },
  '@x/lock': {
    imports: ['Lock'],
    types: ['LockHandle', 'LockOptions', 'LockState'],
    code: `
const lock = new Lock(client, 'smoke', { prefix, ttlMs: 10_000 });
const held = await lock.tryAcquire();
assert(held !== null, 'tryAcquire took a free lock');
assert(held.fence > 0, 'the handle carries a fence');
assert((await new Lock(client, 'smoke', { prefix }).tryAcquire()) === null, 'a second tryAcquire got null');
await held.release();
assert(!(await lock.isLocked()), 'the lock is free after release');
`,
    typed: `
const options: LockOptions = { ttlMs: 1_000, autoExtend: false, prefix };
const handle: LockHandle | null = held;
const state: Promise<LockState> = new Lock(client, 'typed', options).inspect();
void handle;
void state;
`,
  },
  '@x/idempotency': {
    imports: ['IdempotencyStore'],
    types: ['IdempotencyStoreOptions', 'Claim'],
    code: `
const store = new IdempotencyStore(client, { prefix, ttlMs: 60_000, leaseMs: 5_000 });
let runs = 0;
const first = await store.run('charge-1', async () => { runs += 1; return { charged: 100 }; });
const again = await store.run('charge-1', async () => { runs += 1; return { charged: 999 }; });
assert(runs === 1, 'the operation ran once');
assert(first.charged === 100 && again.charged === 100, 'the retry got the stored result');
`,
    typed: `
const options: IdempotencyStoreOptions = { prefix, ttlMs: 1_000 };
const claim: Promise<Claim> = new IdempotencyStore(client, options).begin('typed');
void claim;
`,
  },
  '@x/leasedkeyq': {
    imports: ['LeasedKeyQueue'],
    types: ['LeasedItem', 'LeasedKeyQueueOptions'],
    code: `
const q = new LeasedKeyQueue(client, 'smoke', { prefix, defaultLeaseTimeoutMs: 10_000 });
await q.put('k1', { n: 1 });
await q.put('k2', { n: 2 });
const item = await q.get({ timeoutMs: 1_000 });
assert(item.key === 'k1' && JSON.stringify(item.value) === '{"n":1}', 'get returned the first item put');
await q.ack(item.lease);
assert((await q.size()) === 1, 'one item is left');
await q.close();
`,
    typed: `
const options: LeasedKeyQueueOptions<{ n: number }> = { prefix };
const typedQueue = new LeasedKeyQueue<{ n: number }>(client, 'typed', options);
const next: Promise<LeasedItem<{ n: number }>> = typedQueue.get({ timeoutMs: 1 });
void next;
`,
  },
  '@x/streams': {
    imports: ['StreamConsumer', 'StreamProducer'],
    types: ['StreamConsumerOptions', 'StreamMessage'],
    code: `
await new StreamProducer(client, { prefix }).publish('sales', { quantity: '3' });
await new StreamProducer(client, { prefix }).publish('sales', { quantity: '4' });
let seen = 0;
const consumer = new StreamConsumer(client, {
  prefix,
  stream: 'sales',
  group: 'smoke',
  initialState: { sold: 0 },
  handler: async (message, tx) => {
    tx.state.sold += Number(message.fields.quantity);
    seen += 1;
  },
});
await consumer.start();
const until = Date.now() + 10_000;
while (seen < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
await consumer.stop();
assert(seen === 2, 'both messages were handled');
assert(JSON.stringify(consumer.state) === '{"sold":7}', 'the state was committed');
`,
    typed: `
const options: StreamConsumerOptions<{ sold: number }> = { prefix, stream: 's', group: 'g', initialState: { sold: 0 }, handler: async (m: StreamMessage) => void m };
void options;
`,
  },
  '@x/quota': {
    imports: ['Quota'],
    types: ['QuotaState', 'ConsumeResult'],
    code: `
const quota = new Quota(client, { prefix });
await quota.topUp('wallet', 10);
const r = await quota.tryConsume('wallet', 4, { idempotencyKey: 'req-1' });
const replay = await quota.tryConsume('wallet', 4, { idempotencyKey: 'req-1' });
assert(r.applied === true && replay.remaining === r.remaining, 'consumed once, the replay answered the same');
const tooMuch = await quota.tryConsume('wallet', 100);
assert(tooMuch.applied === false, 'not enough quota is applied: false');
const state = await quota.getState('wallet');
assert(state.available === 6, 'six units are left');
`,
    typed: `
const typedState: Promise<QuotaState> = quota.getState('wallet');
const typedResult: Promise<ConsumeResult> = quota.tryConsume('wallet', 1);
void typedState;
void typedResult;
`,
  },
  '@x/ratelimit': {
    imports: ['RateLimiter'],
    types: ['RateLimitDecision', 'RateLimiterOptions'],
    code: `
const limiter = new RateLimiter(client, 'smoke', { prefix, limits: [{ limit: 2, windowMs: 60_000 }, { limit: 5, windowMs: 3_600_000 }] });
const first = await limiter.limit('user:1', { cost: 2 });
assert(first.allowed === true && first.remaining === 0 && first.limit === 2, 'a cost of 2 was admitted by both limits');
const refused = await limiter.limit('user:1');
assert(refused.allowed === false && refused.retryAfterMs > 0, 'the next call was refused with a retry time');
const peeked = await limiter.peek('user:1');
assert(peeked.policies[1]?.remaining === 3, 'the refused call charged nothing');
await limiter.refund('user:1', 1);
assert((await limiter.limit('user:1')).allowed === true, 'a refund made room');
await limiter.reset('user:1');
`,
    typed: `
const options: RateLimiterOptions = { prefix, limits: [{ limit: 1, windowMs: 1_000 }], algorithm: 'sliding-window' };
const decision: Promise<RateLimitDecision> = new RateLimiter(client, 'typed', options).peek('k');
void decision;
`,
  },
  '@x/semaphore': {
    imports: ['Semaphore'],
    types: ['Permit', 'PermitHolder', 'SemaphoreCreateOptions'],
    code: `
const pool = await Semaphore.create(client, 'smoke', { limit: 2, prefix });
const permit = await pool.acquire({ permits: 2, timeoutMs: 1_000 });
assert(permit.fence > 0 && permit.permits === 2, 'a permit of 2 with a fence');
assert((await pool.tryAcquire()) === null, 'no permit left');
await permit.release();
assert((await pool.available()) === 2, 'both permits are back');
await pool.destroy();
`,
    typed: `
const options: SemaphoreCreateOptions = { limit: 1, prefix };
const typedPermit: Permit = permit;
const holders: Promise<PermitHolder[]> = (await Semaphore.create(client, 'typed', options)).holders();
void typedPermit;
void holders;
`,
  },
  '@x/otel': {
    imports: ['XInstrumentation'],
    types: ['XInstrumentationConfig'],
    code: `
const { tracingChannel } = await import('node:diagnostics_channel');
const api = await import('@opentelemetry/api');
const started = new Set();
const instrumentation = new XInstrumentation({ enabled: false });
instrumentation.setTracerProvider({
  getTracer: () => ({
    startSpan: (name) => {
      started.add(name);
      return api.trace.wrapSpanContext(api.INVALID_SPAN_CONTEXT);
    },
    startActiveSpan: () => {
      throw new Error('not used');
    },
  }),
});
const context = { package: 'event', operation: 'set', resource: 'smoke' };
await tracingChannel('x:event:set').tracePromise(async () => true, context);
assert([...started].join() === '', 'nothing is traced before enable()');
instrumentation.enable();
await tracingChannel('x:event:set').tracePromise(async () => true, context);
instrumentation.disable();
assert([...started].join() === 'event.set', 'enable() started a span for the traced operation: ' + [...started].join());
`,
    typed: `
const config: XInstrumentationConfig = { enabled: true };
void config;
`,
  },
  '@x/inspect': {
    imports: ['Inspector', 'serveInspector'],
    types: ['Snapshot', 'ServeOptions'],
    code: `
const snapshot = await new Inspector(client, { prefix }).snapshot();
assert(snapshot.prefix === prefix && Array.isArray(snapshot.packages.lock) && typeof snapshot.now === 'number', 'a snapshot of every package');
const server = await serveInspector(client, { prefix, port: 0 });
try {
  const page = await (await fetch(server.url)).text();
  assert(page.includes('app.js'), 'the page is packed and served');
  const script = await fetch(new URL('/app.js', server.url));
  assert(script.ok, 'the page script is packed and served');
  const api = JSON.parse(await (await fetch(new URL('/api/resources', server.url))).text());
  assert(api.prefix === prefix && api.actions === false, 'the JSON API answers, read-only');
  assert((await fetch(new URL('/api/lock/none', server.url))).status === 404, 'an unknown lock is a 404');
} finally {
  await server.close();
}
`,
    typed: `
const options: ServeOptions = { prefix, port: 0, allowActions: false };
const typedSnapshot: Snapshot = snapshot;
void options;
void typedSnapshot;
`,
  },
  '@x/event': {
    imports: ['AutoResetEvent', 'ManualResetEvent', 'CountDownLatch'],
    types: ['EventOptions', 'EventWaitOptions', 'CountDownLatchOptions'],
    code: `
const done = new AutoResetEvent(client, 'done', { prefix });
await done.set();
assert((await done.pending()) === 1, 'the signal is kept while nobody waits');
await done.wait({ timeoutMs: 1_000 });
assert((await done.pending()) === 0, 'the wait consumed it');
const ready = new ManualResetEvent(client, 'ready', { prefix });
const waiting = ready.wait({ timeoutMs: 5_000 });
await ready.set();
await waiting;
const latch = new CountDownLatch(client, 'latch', { count: 2, prefix });
assert((await latch.countDown()) === 1, 'one left');
assert((await latch.countDown(5)) === 0, 'never below zero');
await latch.wait({ timeoutMs: 1_000 });
`,
    typed: `
const options: EventOptions = { prefix };
const waitOptions: EventWaitOptions = { timeoutMs: 1 };
const latchOptions: CountDownLatchOptions = { count: 1, prefix };
void options;
void waitOptions;
void latchOptions;
`,
  },
};

/** One entry of {@link SMOKE}. */
export interface SmokeOperation {
  /** Value exports of the package the code uses. */
  imports: string[];
  /** Type exports the typed lines use. */
  types?: string[];
  /** Runs under CJS and ESM, and is type-checked: plain JavaScript that is valid TypeScript. */
  code: string;
  /** TypeScript-only lines, appended in the type-checked files. */
  typed?: string;
}

const PRELUDE_JS = `function assert(condition, message) { if (!condition) throw new Error('smoke assertion failed: ' + message); }`;
const PRELUDE_TS = `function assert(condition: unknown, message: string): asserts condition { if (!condition) throw new Error('smoke assertion failed: ' + message); }`;

function body(op: SmokeOperation, typed: boolean): string {
  return [
    `const client = await createClient({ url: process.env.REDIS_URL }).on('error', () => undefined).connect();`,
    `const prefix = process.env.SMOKE_PREFIX ?? 'smoke';`,
    `try {`,
    op.code.trim(),
    typed && op.typed ? op.typed.trim() : '',
    `} finally {`,
    `  await client.close();`,
    `}`,
    `console.log('smoke ok');`,
  ].join('\n');
}

/** The four files of one package's smoke run: `cjs` and `mjs` run, `cts` and `mts` are type-checked. */
export function smokeFiles(name: string, op: SmokeOperation): { cjs: string; mjs: string; cts: string; mts: string } {
  const values = op.imports.join(', ');
  const typeList = [...op.imports, ...(op.types ?? []).map((t) => `type ${t}`)].join(', ');
  const cjs = [
    `'use strict';`,
    `const { createClient } = require('redis');`,
    `const { ${values} } = require('${name}');`,
    PRELUDE_JS,
    `assert(/index\\.js$/.test(require.resolve('${name}')), 'require loads the CommonJS build');`,
    `(async () => {`,
    body(op, false),
    `})().catch((error) => { console.error(error); process.exit(1); });`,
  ].join('\n');
  const mjs = [
    `import { createClient } from 'redis';`,
    `import { ${values} } from '${name}';`,
    PRELUDE_JS,
    `assert(/index\\.mjs$/.test(import.meta.resolve('${name}')), 'import loads the ESM build');`,
    body(op, false),
  ].join('\n');
  const ts = (wrap: boolean) =>
    [
      `import { createClient } from 'redis';`,
      `import { ${typeList} } from '${name}';`,
      PRELUDE_TS,
      wrap ? `async function main(): Promise<void> {` : '',
      body(op, true),
      wrap ? `}\nvoid main();` : 'export {};',
    ].join('\n');
  return { cjs, mjs, cts: ts(true), mts: ts(false) };
}
