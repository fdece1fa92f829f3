import { WakeBus } from '@x/redis-core';
import { AutoResetEvent, ManualResetEvent } from '@x/event';
import type { BenchCase, BenchContext, Result } from '../harness';

const WAITERS = 10;

interface Target {
  /** Signals once. */
  set(): Promise<unknown>;
  /** Whether every waiter is in place (checked before the first signal). */
  ready(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * A target whose waiters loop (wait, report, wait again) is signalled `count` times, one signal
 * at a time. The latency recorded is set() call → a woken wait() returning.
 */
async function wakeLatency(
  ctx: BenchContext,
  label: string,
  count: number,
  make: (woken: () => void) => Target,
  baseline = false,
): Promise<Result> {
  const run = async (n: number) => {
    let next: (() => void) | undefined;
    const target = make(() => next?.());
    while (!(await target.ready())) await new Promise((r) => setTimeout(r, 5));
    const latencies: number[] = [];
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const woke = new Promise<void>((resolve) => (next = resolve));
      const t = performance.now();
      await target.set();
      await woke;
      latencies.push(performance.now() - t);
    }
    const elapsedMs = performance.now() - started;
    next = undefined;
    await target.stop();
    return { latencies, elapsedMs };
  };
  const timed = await run(count);
  // Round trips are counted in a short pass of their own (MONITOR slows the server).
  const counted = 200;
  await ctx.commands();
  await run(counted);
  const commands = await ctx.commands();
  const r = ctx.record(label, timed.latencies, { elapsedMs: timed.elapsedMs, baseline });
  r.roundTripsPerOp = commands / counted;
  return r;
}

const benchCase: BenchCase = {
  name: '@x/event: set → the woken wait returns',
  async run(ctx) {
    const client = await ctx.client();
    const results: Result[] = [];
    try {
      // redsync's design: a signal is a list element and each waiter blocks on a connection of its own.
      const blocked = await Promise.all(Array.from({ length: WAITERS }, () => ctx.client()));
      let rawRound = 0;
      results.push(
        await wakeLatency(
          ctx,
          'raw RPUSH → BLPOP (10 waiters on 10 blocked connections)',
          2_000,
          (woken) => {
            const key = `bench:raw:event:${rawRound++}`;
            const loops = blocked.map(async (conn) => {
              for (;;) {
                const popped = await conn.blPop(key, 0);
                if (popped?.element === 'stop') return;
                woken();
              }
            });
            return {
              set: () => client.rPush(key, 's'),
              ready: async () => (String(await client.sendCommand(['CLIENT', 'LIST'])).match(/cmd=blpop/g) ?? []).length === WAITERS,
              stop: async () => {
                await client.rPush(key, Array.from({ length: WAITERS }, () => 'stop'));
                await Promise.all(loops);
              },
            };
          },
          true,
        ),
      );

      let autoRound = 0;
      results.push(
        await wakeLatency(ctx, '@x/event AutoResetEvent set → wait (10 waiters, 1 subscriber)', 2_000, (woken) => {
          const name = `auto-${autoRound++}`;
          const event = new AutoResetEvent(client, name, { prefix: 'bench' });
          const controller = new AbortController();
          const loops = Array.from({ length: WAITERS }, async () => {
            while (!controller.signal.aborted) {
              const ok = await event.wait({ signal: controller.signal }).then(() => true, () => false);
              if (ok) woken();
            }
          });
          return {
            set: () => event.set(),
            ready: async () => (await client.lLen(`bench:auto-event:{${name}}:queue`)) === WAITERS,
            stop: async () => {
              controller.abort();
              await Promise.all(loops);
              await event.clear();
            },
          };
        }),
      );

      // A manual-reset event: one waiter waits, set() wakes it, reset() (untimed) re-arms.
      const manual = async (n: number) => {
        const event = new ManualResetEvent(client, `manual-${n}-${Math.random()}`, { prefix: 'bench', ttlMs: 60_000 });
        const latencies: number[] = [];
        const started = performance.now();
        for (let i = 0; i < n; i++) {
          const waiting = event.wait({ timeoutMs: 10_000 });
          while (WakeBus.for(client).listenerCount !== 1) await new Promise((r) => setImmediate(r));
          const t = performance.now();
          await event.set();
          await waiting;
          latencies.push(performance.now() - t);
          await event.reset();
        }
        return { latencies, elapsedMs: performance.now() - started };
      };
      const timed = await manual(1_000);
      await ctx.commands();
      await manual(200);
      const commands = await ctx.commands();
      const r = ctx.record('@x/event ManualResetEvent set → wait (1 waiter; reset between)', timed.latencies, {
        elapsedMs: timed.elapsedMs,
        note: 'RT/op: set, reset, and the read of the wait before and after it subscribes',
      });
      r.roundTripsPerOp = commands / 200;
      results.push(r);

      for (const result of results) result.case = '@x/event: set() → the woken wait() returns (ops/s = signals/s; RT/op per signal)';
      return results;
    } finally {
      await WakeBus.close(client);
    }
  },
};
export default benchCase;
