import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis } from '@x/testing';
import { createContext, report, type BenchCase } from './harness';

// `pnpm bench` runs every case in src/cases; `pnpm bench lock quota` runs the files whose names
// contain one of the words. `pnpm bench --json > run.jsonl` prints only the results, one JSON line
// each (the tables go to stderr), for `pnpm --filter @x/bench compare before.jsonl after.jsonl`.
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const filters = args.filter((a) => a !== '--json');
  const dir = join(__dirname, 'cases');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
    .sort();
  const redis = await startRedis();
  const say = json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => console.log(line);
  say(`# bench on ${redis.url} (${redis.source}); node ${process.version}`);
  try {
    for (const file of files) {
      const mod = (await import(join(dir, file))) as { default: BenchCase };
      const { ctx, close } = await createContext(mod.default.name, redis.url);
      try {
        // A case may measure several scenarios: one table per scenario (`case` of its results).
        const results = await mod.default.run(ctx);
        for (const name of new Set(results.map((r) => r.case))) report(results.filter((r) => r.case === name), json);
      } finally {
        await close();
      }
    }
  } finally {
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
