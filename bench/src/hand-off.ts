import type { BenchContext, Result } from './harness';

/** One contender of a hand-off run: `acquire` resolves with the function that releases. */
export interface Contender {
  acquire(): Promise<() => Promise<void>>;
}

/**
 * Contenders on a resource with `permits` permits (1 for a lock), each acquiring, holding for no
 * time and releasing, until `grants` grants were made. Grants beyond the first `permits` are each
 * made possible by one release; with FIFO hand-over the n-th of them follows the n-th release,
 * and the latency recorded is that gap (release call → next grant). ops/s is grants per second;
 * round trips per grant are counted in a short pass of their own (MONITOR slows the server).
 */
export async function handOff(
  ctx: BenchContext,
  label: string,
  contenders: Contender[],
  grants: number,
  options: { permits?: number; baseline?: boolean; note?: string } = {},
): Promise<Result> {
  const permits = options.permits ?? 1;
  const run = async (count: number) => {
    const gaps: number[] = [];
    const releases: number[] = [];
    let made = 0;
    const started = performance.now();
    await Promise.all(
      contenders.map(async (c) => {
        while (made < count) {
          const release = await c.acquire();
          const at = performance.now();
          const freedBy = releases[made - permits];
          if (freedBy !== undefined) gaps.push(at - freedBy);
          made += 1;
          releases.push(performance.now());
          await release();
        }
      }),
    );
    return { gaps, made, elapsedMs: performance.now() - started };
  };
  const timed = await run(grants);
  await ctx.commands();
  const counted = await run(Math.max(20 * permits, Math.floor(grants / 5)));
  const commands = await ctx.commands();
  const r = ctx.record(label, timed.gaps, {
    elapsedMs: timed.elapsedMs,
    baseline: options.baseline ?? false,
    ...(options.note ? { note: options.note } : {}),
  });
  r.opsPerSec = timed.made / (timed.elapsedMs / 1000);
  r.roundTripsPerOp = commands / counted.made;
  return r;
}
