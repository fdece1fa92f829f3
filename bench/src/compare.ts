import { readFileSync } from 'node:fs';
import type { Result } from './harness';

// `pnpm --filter @x/bench compare before.jsonl after.jsonl`: for every line measured in both runs
// (same case, same label), the ratio to its baseline before and after, and the change; client CPU
// and server µs per op beside it. Ratios, not ops/s: each run is compared with its own baseline.
function load(file: string): Map<string, Result> {
  const results = new Map<string, Result>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line) as Result;
    results.set(`${r.case} | ${r.label}`, r);
  }
  return results;
}

const [beforeFile, afterFile] = process.argv.slice(2);
if (!beforeFile || !afterFile) {
  console.error('usage: compare <before.jsonl> <after.jsonl>');
  process.exit(2);
}
const before = load(beforeFile);
const after = load(afterFile);
const f = (n: number | null | undefined, digits = 2) => (n == null || Number.isNaN(n) ? '-' : n.toFixed(digits));
const rows = [...after].flatMap(([key, a]) => {
  const b = before.get(key);
  if (!b) return [];
  const change = a.ratio !== undefined && b.ratio ? `${(((a.ratio - b.ratio) / b.ratio) * 100).toFixed(0)}%` : '-';
  return [[key, f(b.ratio), f(a.ratio), change, `${f(b.cpuUsPerOp, 1)} → ${f(a.cpuUsPerOp, 1)}`, `${f(b.serverUsPerOp, 1)} → ${f(a.serverUsPerOp, 1)}`]];
});
const head = ['case | label', 'ratio before', 'ratio after', 'change', 'CPU µs/op', 'server µs/op'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of rows) console.log(line(r));
const missing = [...before.keys()].filter((k) => !after.has(k));
if (missing.length > 0) console.log(`\nonly in ${beforeFile}: ${missing.join('; ')}`);
