import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { Lock } from '@x/lock';
import { XInstrumentation } from '@x/otel';
import { Quota } from '@x/quota';
import { operation } from '@x/redis-core';
import type { BenchCase, BenchContext, Result } from '../harness';

// Spans are made and ended, then dropped: what is measured is the instrumentation, not an exporter.
const DROP: SpanProcessor = {
  onStart: () => undefined,
  onEnd: () => undefined,
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};

/** Client CPU (user + system) per operation, in µs, over `n` operations one after another. */
async function cpuPerOp(op: () => Promise<unknown>, n: number): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) await op();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

/** CPU of `operation().trace(resource, fn)` with nobody subscribed, minus a direct `fn()`, in ns. */
function traceOverheadNs(): number {
  const op = operation<number>('bench', 'noop');
  const done = Promise.resolve(1);
  const fn = () => done;
  const n = 2_000_000;
  const time = (call: () => unknown) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) call();
    return Number(process.hrtime.bigint() - start) / n;
  };
  time(() => op.trace('r', fn)); // warm-up
  time(fn);
  return Math.max(0, time(() => op.trace('r', fn)) - time(fn));
}

/**
 * The cost of tracing per operation: quota.tryConsume and a lock tryAcquire + release with no
 * subscriber (the channels' `hasSubscribers` check only), then with @x/otel enabled (spans and
 * metrics made, spans dropped), then with no subscriber again, beside the raw script.
 */
const benchCase: BenchCase = {
  name: 'tracing: no subscriber vs @x/otel enabled',
  async run(ctx: BenchContext) {
    const client = await ctx.client();
    const run = `b${Date.now().toString(36)}`;
    const quota = new Quota(client, { prefix: run });
    await quota.topUp('credits', 1e12);
    const lock = new Lock(client, 'traced', { prefix: run, autoExtend: false });
    const sha = await client.scriptLoad("return redis.call('DECRBY', KEYS[1], ARGV[1])");
    const rawKey = `${run}:raw:{credits}`;
    const consume = () => quota.tryConsume('credits', 1);
    const lockCycle = async () => {
      const held = await lock.tryAcquire();
      await held?.release();
    };
    const instrumentation = new XInstrumentation({ enabled: false });
    instrumentation.setTracerProvider(new BasicTracerProvider({ spanProcessors: [DROP] }));
    const meterProvider = new MeterProvider();
    instrumentation.setMeterProvider(meterProvider);

    const results: Result[] = [];
    // Timed first (which warms it up), then its client CPU over 5,000 more calls.
    const measure = async (label: string, op: () => Promise<unknown>, iterations: number, baseline = false, note = '') => {
      const result = await ctx.measure(label, op, { iterations, baseline });
      result.note = `${note}client CPU ${(await cpuPerOp(op, 5_000)).toFixed(1)} µs/op`;
      return result;
    };
    results.push(await measure('raw evalSha DECRBY', () => client.evalSha(sha, { keys: [rawKey], arguments: ['1'] }), 20_000, true));
    for (const pass of ['no subscriber', '@x/otel enabled', 'no subscriber again'] as const) {
      if (pass === '@x/otel enabled') instrumentation.enable();
      else instrumentation.disable();
      results.push(await measure(`quota.tryConsume, ${pass}`, consume, 20_000));
      results.push(await measure(`lock tryAcquire+release, ${pass}`, lockCycle, 5_000, false, 'two calls; '));
    }
    results.at(-1)!.note += `; trace() without a subscriber: ${traceOverheadNs().toFixed(0)} ns per call over a direct call`;
    instrumentation.disable();
    await meterProvider.shutdown();
    return results;
  },
};

export default benchCase;
