import { createClient } from 'redis';

/** A connected node-redis client on the benchmark's own Redis. */
export type BenchClient = ReturnType<typeof createClient>;

/** One measured line of a case. */
export interface Result {
  case: string;
  label: string;
  /** True for the line the others are compared with. */
  baseline: boolean;
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Commands clients sent per operation (counted on the server with MONITOR), or null. */
  roundTripsPerOp: number | null;
  /** Client CPU (user + system, this process) per operation while timing, in µs, or null. */
  cpuUsPerOp?: number | null;
  /**
   * Server time per operation while timing, in µs: the `INFO commandstats` usec of the commands
   * clients sent themselves (a script's usec includes the commands it calls), or null.
   */
  serverUsPerOp?: number | null;
  /** opsPerSec / baseline opsPerSec; filled in by the report. */
  ratio?: number;
  note?: string;
}

export interface MeasureOptions {
  /** Operations to time (after `warmup` untimed ones). */
  iterations?: number;
  warmup?: number;
  /** Operations in flight at once (each chain runs its ops one after another). */
  concurrency?: number;
  baseline?: boolean;
  note?: string;
}

/** What a case gets: clients on the benchmark Redis, and the measuring helpers. */
export interface BenchContext {
  url: string;
  /** A new connected client (RESP3), closed after the case. */
  client(): Promise<BenchClient>;
  /** Times `op` `iterations` times, then counts the commands the server receives per op (MONITOR). */
  measure(label: string, op: () => Promise<unknown>, options?: MeasureOptions): Promise<Result>;
  /** Builds a result from latencies measured by the case itself (hand-off gaps, wake-up times). */
  record(label: string, latenciesMs: number[], options: { elapsedMs: number; commands?: number; baseline?: boolean; note?: string }): Result;
  /**
   * Counts commands clients send to the server (MONITOR; commands run inside scripts excluded):
   * the first call starts counting and returns 0, the second returns the count and stops. MONITOR
   * slows the server, so count in a pass of its own, not while timing.
   */
  commands(): Promise<number>;
}

/** A benchmark case: one file in src/cases, measured beside its baseline in the same run. */
export interface BenchCase {
  name: string;
  run(ctx: BenchContext): Promise<Result[]>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function createContext(caseName: string, url: string): Promise<{ ctx: BenchContext; close(): Promise<void> }> {
  const opened: BenchClient[] = [];
  const admin = createClient({ url });
  admin.on('error', () => undefined);
  await admin.connect();
  // Round trips are counted on the server with MONITOR: every command a client sent counts,
  // commands run inside scripts (`[0 lua]`) do not. MONITOR slows the server down (every command
  // is copied to it), so it is on only between two calls of `commands()`, never while timing.
  interface Monitor {
    client: BenchClient;
    seen: number;
    marker?: { text: string; resolve: () => void };
  }
  let monitor: Monitor | undefined;
  // Names of the commands clients sent themselves, as MONITOR saw them (the server time per op
  // sums their usec only: a script's usec already includes the commands it calls).
  const sentByClients = new Set<string>();
  const commandStats = async (): Promise<Map<string, number>> => {
    const text = String(await admin.sendCommand(['INFO', 'commandstats']));
    const usec = new Map<string, number>();
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=\d+,usec=(\d+)/gm)) usec.set(m[1]!.replace('|', ' '), Number(m[2]));
    return usec;
  };
  const commands = async (): Promise<number> => {
    if (!monitor) {
      sentByClients.clear();
      const m: Monitor = { client: createClient({ url }) as BenchClient, seen: 0 };
      m.client.on('error', () => undefined);
      await m.client.connect();
      await (m.client as unknown as { monitor(listener: (line: string) => void): Promise<void> }).monitor((line) => {
        if (m.marker && line.includes(m.marker.text)) {
          m.marker.resolve();
          return;
        }
        if (/\[\d+ lua\]/.test(line)) return;
        if (/"(echo|info|config|client|hello|ping|monitor)"/i.test(line.slice(0, 200))) return;
        const name = /\] "([^"]+)"/.exec(line)?.[1];
        if (name) sentByClients.add(name.toLowerCase());
        m.seen += 1;
      });
      monitor = m;
      return 0;
    }
    const m = monitor;
    monitor = undefined;
    const text = `bench-marker-${Math.random().toString(36).slice(2)}`;
    const reached = new Promise<void>((resolve) => (m.marker = { text, resolve }));
    await admin.sendCommand(['ECHO', text]);
    await reached;
    m.client.destroy();
    return m.seen;
  };
  const record: BenchContext['record'] = (label, latencies, options) => {
    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      case: caseName,
      label,
      baseline: options.baseline ?? false,
      ops: latencies.length,
      opsPerSec: latencies.length / (options.elapsedMs / 1000),
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      roundTripsPerOp: options.commands === undefined ? null : options.commands / latencies.length,
      ...(options.note ? { note: options.note } : {}),
    };
  };
  const ctx: BenchContext = {
    url,
    async client() {
      const c = createClient({ url, RESP: 3 });
      c.on('error', () => undefined);
      await c.connect();
      opened.push(c as BenchClient);
      return c as BenchClient;
    },
    async measure(label, op, options = {}) {
      const { iterations = 5_000, warmup = Math.min(500, iterations), concurrency = 1 } = options;
      for (let i = 0; i < warmup; i++) await op();
      const latencies: number[] = [];
      let next = 0;
      const statsBefore = await commandStats();
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < iterations) {
            next += 1;
            const t = performance.now();
            await op();
            latencies.push(performance.now() - t);
          }
        }),
      );
      const elapsedMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuBefore);
      const statsAfter = await commandStats();
      const result = record(label, latencies, { elapsedMs, baseline: options.baseline ?? false, ...(options.note ? { note: options.note } : {}) });
      result.cpuUsPerOp = (cpu.user + cpu.system) / latencies.length;
      const counted = Math.min(200, iterations);
      await commands();
      for (let i = 0; i < counted; i++) await op();
      result.roundTripsPerOp = (await commands()) / counted;
      let usec = 0;
      for (const name of sentByClients) usec += (statsAfter.get(name) ?? 0) - (statsBefore.get(name) ?? 0);
      result.serverUsPerOp = usec / latencies.length;
      return result;
    },
    record,
    commands,
  };
  return {
    ctx,
    async close() {
      await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
      await admin.close();
      monitor?.client.destroy();
    },
  };
}

/** Prints one case as a table, then one JSON line per result; with `json`, the table goes to stderr. */
export function report(results: Result[], json = false): void {
  const say = json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => console.log(line);
  const base = results.find((r) => r.baseline);
  for (const r of results) if (base) r.ratio = r.opsPerSec / base.opsPerSec;
  const rows = results.map((r) => [
    `${r.label}${r.baseline ? ' (baseline)' : ''}`,
    r.opsPerSec.toFixed(0),
    r.p50Ms.toFixed(3),
    r.p99Ms.toFixed(3),
    r.roundTripsPerOp === null ? '-' : r.roundTripsPerOp.toFixed(2),
    r.cpuUsPerOp == null ? '-' : r.cpuUsPerOp.toFixed(1),
    r.serverUsPerOp == null ? '-' : r.serverUsPerOp.toFixed(1),
    r.ratio === undefined ? '-' : r.ratio.toFixed(2),
    r.note ?? '',
  ]);
  const head = ['label', 'ops/s', 'p50 ms', 'p99 ms', 'RT/op', 'CPU µs/op', 'server µs/op', 'ratio', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  say(`\n## ${results[0]?.case ?? ''}`);
  say(line(head));
  say(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of rows) say(line(row));
  for (const r of results) console.log(JSON.stringify(r));
}
