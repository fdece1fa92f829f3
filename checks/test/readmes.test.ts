// READMEs that run: every ```ts block of every published package's README is written to a .mts
// file inside checks/ (where `@x/*` and `redis` resolve to the workspace's builds), run with tsx
// against the test run's Redis (REDIS_URL set, top-level await), and type-checked with tsc. A
// README also has the sections a user looks for.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { redisUrl } from '@x/testing';
import { describeRun, run } from '../src/exec';
import { typescriptBlocks, type ReadmeBlock } from '../src/readme';
import { ROOT, publishedPackages, slug } from '../src/workspace';

const here = join(ROOT, 'checks');
const out = join(here, '.readme-blocks');
const tsxCli = require.resolve('tsx/cli', { paths: [here] });
const tscBin = require.resolve('typescript/bin/tsc', { paths: [here] });

interface Written extends ReadmeBlock {
  readme: string;
  file: string;
}

const packages = publishedPackages();
const blocks = new Map<string, Written[]>();
for (const pkg of packages) {
  const readme = join(pkg.dir, 'README.md');
  if (!existsSync(readme)) continue;
  blocks.set(
    pkg.name,
    typescriptBlocks(readme).map((b) => ({ ...b, readme: relative(ROOT, readme), file: join(out, `${slug(pkg.name)}-block-${b.index}.mts`) })),
  );
}
const tscErrors: string[] = [];
let tscFailure: string | undefined;

beforeAll(async () => {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const all = [...blocks.values()].flat();
  for (const b of all) writeFileSync(b.file, `${b.code}\n`);
  writeFileSync(
    join(out, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2022', 'esnext.disposable'],
          types: ['node'],
          skipLibCheck: true,
        },
        files: all.map((b) => relative(out, b.file)),
      },
      null,
      2,
    ),
  );
  if (all.length === 0) return;
  const tsc = await run(process.execPath, [tscBin, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: out, timeoutMs: 120_000 });
  tscErrors.push(...tsc.stdout.split('\n').filter((l) => /error TS\d+/.test(l)));
  if (tsc.code !== 0 && tscErrors.length === 0) tscFailure = describeRun('tsc over the README blocks', tsc);
}, 180_000);

afterAll(() => {
  if (!process.env.X_CHECKS_KEEP) rmSync(out, { recursive: true, force: true });
});

describe.each(packages.map((p) => [p.name, p] as const))('%s README', (name, pkg) => {
  const readme = join(pkg.dir, 'README.md');

  it('has a title, an install line, a usage block, options, errors and Redis requirements', () => {
    if (!existsSync(readme)) throw new Error(`${pkg.rel}/README.md is missing`);
    const text = readFileSync(readme, 'utf8');
    const missing = [
      [`# ${name}`, new RegExp(`^# ${name.replace('/', '\\/')}\\s*$`, 'm')],
      [`npm install ${name}`, new RegExp(`npm install ${name.replace('/', '\\/')}\\b`)],
      ['## Options', /^## Options\b/m],
      ['## Errors', /^## Errors\b/m],
      ['## Redis requirements', /^## Redis requirements\b/m],
    ]
      .filter(([, re]) => !(re as RegExp).test(text))
      .map(([what]) => what as string);
    if (typescriptBlocks(readme).length === 0) missing.push('a ```ts usage block');
    expect({ readme: `${pkg.rel}/README.md`, missing }).toEqual({ readme: `${pkg.rel}/README.md`, missing: [] });
  });

  const mine = blocks.get(name) ?? [];
  if (mine.length === 0) return;
  describe.each(mine.map((b) => [b.index, b] as const))('block %i', (index, block) => {
    const where = `${block.readme} block ${index} (line ${block.line})`;

    it('runs against Redis as written', async () => {
      const result = await run(process.execPath, [tsxCli, block.file], {
        cwd: out,
        env: { ...process.env, REDIS_URL: redisUrl() },
        timeoutMs: 60_000,
      });
      if (result.code !== 0) throw new Error(describeRun(`${where}, run with tsx as ${relative(ROOT, block.file)},`, result));
    });

    it('type-checks (tsc --noEmit, strict, nodenext)', () => {
      if (tscFailure) throw new Error(tscFailure);
      const errors = tscErrors.filter((l) => l.startsWith(relative(out, block.file)));
      if (errors.length > 0) throw new Error(`${where} does not type-check:\n${errors.join('\n')}`);
    });
  });
});
