// Pack-and-install: each published package as a user gets it. `pnpm pack` every published
// package, install the tarballs with npm into a fresh project outside the workspace (os.tmpdir()),
// then run one real operation (checks/src/smoke.ts) against a real Redis from CommonJS and from
// ESM, and type-check it as .cts and .mts. Separately, per package, resolve an install of that
// package alone (npm --package-lock-only, the other tarballs only reachable through `overrides`)
// to prove it brings in @x/redis-core and nothing else of ours, and count what npm installs.
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { startRedis, uniquePrefix, type RedisServer } from '@x/testing';
import { describeRun, npmEnv, run } from '../src/exec';
import { SMOKE, smokeFiles } from '../src/smoke';
import { formatBytes, tarballFigures, type TarballFigures } from '../src/tarball';
import { CORE, ROOT, expectedOurs, otherPeers, ourDependencies, publishedPackages, slug, talksToRedis, type WorkspacePackage } from '../src/workspace';

const packages = publishedPackages();
// @x/redis-core is packed even when X_CHECK_PACKAGES leaves it out: every primitive needs it.
const packed = [...new Set([CORE, ...packages.map((p) => p.name)])];
const tmp = mkdtempSync(join(tmpdir(), 'x-checks-pack-'));
const tarballDir = join(tmp, 'tarballs');
const app = join(tmp, 'app');
const tarballs = new Map<string, string>();
const packFigures = new Map<string, TarballFigures>();
const alone = new Map<string, { installs: number; ownDependencies: string[]; ours: string[]; thirdParty: string[] }>();
let redis: RedisServer;
let installError: string | undefined;
let tscErrors: string[] = [];
let tscFailure: string | undefined;
const timings: Record<string, number> = {};

function allPublished(): Map<string, WorkspacePackage> {
  const saved = process.env.X_CHECK_PACKAGES;
  delete process.env.X_CHECK_PACKAGES;
  try {
    return new Map(publishedPackages().map((p) => [p.name, p]));
  } finally {
    if (saved !== undefined) process.env.X_CHECK_PACKAGES = saved;
  }
}

function npm(args: string[], cwd: string, timeoutMs = 120_000) {
  return run('npm', [...args, '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { cwd, env: npmEnv(), timeoutMs });
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const stat = lstatSync(path);
    total += stat.isDirectory() ? dirBytes(path) : stat.size;
  }
  return total;
}

beforeAll(async () => {
  redis = await startRedis();
  const everything = allPublished();
  mkdirSync(tarballDir, { recursive: true });
  mkdirSync(app, { recursive: true });

  let t = Date.now();
  for (const name of packed) {
    const pkg = everything.get(name);
    if (!pkg) throw new Error(`${name} is not a published package of packages/*`);
    const result = await run('pnpm', ['pack', '--pack-destination', tarballDir], { cwd: pkg.dir, timeoutMs: 60_000 });
    if (result.code !== 0) throw new Error(describeRun(`pnpm pack in ${pkg.rel}`, result));
    const file = join(tarballDir, `${slug(name)}-${pkg.version}.tgz`);
    tarballs.set(name, file);
    packFigures.set(name, tarballFigures(file));
  }
  timings.pack = Date.now() - t;

  // One npm install for every tarball: the root lists them all, so npm must find each @x range
  // satisfied by the tarball beside it (a range no local version satisfies would go to the
  // registry and fail here).
  t = Date.now();
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'x-checks-app', version: '0.0.0', private: true }, null, 2));
  const install = await npm(
    ['install', ...packed.map((n) => relative(app, tarballs.get(n)!)), 'redis@^6', ...otherPeers([...everything.values()]), 'typescript@~5.9', '@types/node@^20'],
    app,
    180_000,
  );
  timings.install = Date.now() - t;
  if (install.code !== 0) {
    installError = describeRun('npm install of the tarballs', install);
    return;
  }

  // The smoke files, and one tsc over the typed ones (strict, node16 resolution of both the
  // `import` and the `require` conditions, declaration files of ours checked too).
  const typed: string[] = [];
  for (const pkg of packages) {
    const op = SMOKE[pkg.name];
    if (!op) continue;
    const files = smokeFiles(pkg.name, op);
    for (const [ext, source] of Object.entries(files)) writeFileSync(join(app, `${slug(pkg.name)}.${ext}`), `${source}\n`);
    typed.push(`${slug(pkg.name)}.cts`, `${slug(pkg.name)}.mts`);
  }
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          noEmit: true,
          noUncheckedIndexedAccess: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2022', 'esnext.disposable'],
          types: ['node'],
          skipLibCheck: false,
        },
        files: typed,
      },
      null,
      2,
    ),
  );
  if (typed.length > 0) {
    t = Date.now();
    const tsc = await run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--pretty', 'false'], {
      cwd: app,
      timeoutMs: 120_000,
    });
    timings.tsc = Date.now() - t;
    tscErrors = tsc.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
    if (tsc.code !== 0 && tscErrors.length === 0) tscFailure = describeRun('tsc', tsc);
  }
}, 420_000);

afterAll(async () => {
  printFigures();
  if (!process.env.X_CHECKS_KEEP) rmSync(tmp, { recursive: true, force: true });
  else process.stdout.write(`kept ${tmp}\n`);
});

function printFigures(): void {
  const rows = packages
    .filter((p) => packFigures.has(p.name))
    .map((p) => {
      const f = packFigures.get(p.name)!;
      const a = alone.get(p.name);
      let installed: number | undefined;
      if (a && !installError) {
        try {
          installed = [p.name, ...a.ownDependencies].reduce((sum, n) => sum + dirBytes(join(app, 'node_modules', n)), 0);
        } catch {
          installed = undefined;
        }
      }
      return {
        name: p.name,
        version: p.version,
        packedBytes: f.packedBytes,
        unpackedBytes: f.unpackedBytes,
        files: f.files,
        installedBytes: installed ?? null,
        dependencies: a ? a.ownDependencies.length : null,
        dependencyNames: a?.ownDependencies ?? null,
        npmInstallsWithRedis: a?.installs ?? null,
      };
    });
  if (rows.length === 0) return;
  const head = ['package', 'packed', 'unpacked', 'files', 'installed (with deps)', 'dependencies', 'npm installs (with redis)'];
  const body = rows.map((r) => [
    `${r.name}@${r.version}`,
    formatBytes(r.packedBytes),
    formatBytes(r.unpackedBytes),
    String(r.files),
    r.installedBytes === null ? '?' : formatBytes(r.installedBytes),
    r.dependencies === null ? '?' : `${r.dependencies}${r.dependencyNames?.length ? ` (${r.dependencyNames.join(', ')})` : ''}`,
    r.npmInstallsWithRedis === null ? '?' : String(r.npmInstallsWithRedis),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const table = [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
  const outDir = join(ROOT, 'checks', '.out');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'package-figures.json'), `${JSON.stringify({ rows, timingsMs: timings }, null, 2)}\n`);
  writeFileSync(join(outDir, 'package-figures.md'), `${table}\n`);
  process.stdout.write(
    `\nPackages as users install them (sizes in kB = 1000 B; "dependencies": what the package pulls in besides ` +
      `the redis peer; "npm installs": packages npm adds for \`npm install <pkg> redis\`):\n${table}\n` +
      `timings: ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}\n` +
      `(also in checks/.out/package-figures.json)\n\n`,
  );
}

/** Resolves `dep` from the lockfile entry at `from`, as node does: nearest node_modules upwards. */
function resolveIn(lock: Record<string, any>, from: string, dep: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${dep}`;
    if (lock[candidate]) return candidate;
    if (!base) return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut < 0 ? '' : base.slice(0, cut);
  }
}

describe.each(packages.map((p) => [p.name, p] as const))('%s', (name, pkg) => {
  it('packs its dist, package.json, README and LICENSE only', () => {
    const f = packFigures.get(name)!;
    for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts']) {
      expect({ file: needed, packed: f.paths.includes(needed) }).toEqual({ file: needed, packed: true });
    }
    expect(f.paths.filter((p) => !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/.*)$/.test(p))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(pkg.dir, 'package.json'), 'utf8'));
    // A primitive has redis as its peer; an integration (@x/otel) has a peer of its own.
    const peers = Object.keys(manifest.peerDependencies ?? {});
    expect({ peers, declaresItsPeer: talksToRedis(pkg) ? peers.includes('redis') : peers.length > 0 }).toEqual({ peers, declaresItsPeer: true });
    expect(manifest.dependencies?.redis).toBeUndefined();
  });

  const ofOurs = expectedOurs(pkg);
  it(ofOurs.length === 0 ? 'installed alone, brings in nothing else of ours' : 'installed alone, brings in @x/redis-core and nothing else of ours', async () => {
    // What the tarball declares: a primitive depends on @x/redis-core and nothing else of ours;
    // the core and an integration (@x/otel) on nothing of ours.
    const declared = ourDependencies(JSON.parse(readFileSync(join(pkg.dir, 'package.json'), 'utf8')));
    expect({ package: name, declaresOfOurs: declared }).toEqual({ package: name, declaresOfOurs: ofOurs });

    // What npm resolves for `npm install <pkg> redis`: the other tarballs are reachable only as
    // overrides, so one of ours appears in the tree only if something in it depends on it.
    const dir = join(tmp, `alone-${slug(name)}`);
    mkdirSync(dir, { recursive: true });
    const overrides = Object.fromEntries(
      [...tarballs].filter(([n]) => n !== name).map(([n, file]) => [n, `file:${relative(dir, file)}`]),
    );
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `alone-${slug(name)}`, version: '0.0.0', private: true, overrides }, null, 2));
    const result = await npm(['install', '--package-lock-only', '--prefer-offline', relative(dir, tarballs.get(name)!), 'redis@^6'], dir, 120_000);
    if (result.code !== 0) throw new Error(describeRun(`npm install --package-lock-only of ${name} alone`, result));
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')).packages as Record<string, any>;
    const installed = Object.keys(lock).filter((path) => path !== '');
    const nameOf = (path: string) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const ours = [...new Set(installed.map(nameOf).filter((n) => n.startsWith('@x/')))].sort();
    expect({ package: name, oursInstalled: ours }).toEqual({ package: name, oursInstalled: [...new Set([name, ...ofOurs])].sort() });

    // Its own dependencies (not the redis peer): the closure from its node in the tree.
    const start = resolveIn(lock, '', name)!;
    const seen = new Set<string>();
    const queue = [start];
    while (queue.length > 0) {
      const at = queue.shift()!;
      const entry = lock[at] ?? {};
      for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
        const path = resolveIn(lock, at, dep);
        if (!path) throw new Error(`${dep} (needed by ${nameOf(at)}) is missing from the resolved tree`);
        if (!seen.has(path)) {
          seen.add(path);
          queue.push(path);
        }
      }
    }
    const ownDependencies = [...seen].map(nameOf).sort();
    alone.set(name, {
      installs: installed.length,
      ownDependencies,
      ours,
      thirdParty: installed.map(nameOf).filter((n) => !n.startsWith('@x/')),
    });
    expect(ownDependencies.filter((n) => n.startsWith('@x/'))).toEqual(ofOurs);
  });

  const smoke = (kind: 'cjs' | 'mjs') => async () => {
    if (installError) throw new Error(installError);
    if (!SMOKE[name]) throw new Error(`no smoke operation for ${name}: add an entry to the SMOKE table in checks/src/smoke.ts`);
    const result = await run(process.execPath, [`${slug(name)}.${kind}`], {
      cwd: app,
      env: { ...process.env, REDIS_URL: redis.url, SMOKE_PREFIX: uniquePrefix() },
      timeoutMs: 60_000,
    });
    if (result.code !== 0 || !result.stdout.includes('smoke ok')) {
      throw new Error(describeRun(`the ${kind === 'cjs' ? 'CommonJS require' : 'ESM import'} smoke run of ${name} (${join(app, `${slug(name)}.${kind}`)})`, result));
    }
  };
  it('runs a real operation against Redis from a CommonJS require', smoke('cjs'));
  it('runs a real operation against Redis from an ESM import', smoke('mjs'));

  it('type-checks a .cts and a .mts that use its public types (tsc --noEmit, strict, nodenext)', () => {
    if (installError) throw new Error(installError);
    if (!SMOKE[name]) throw new Error(`no smoke operation for ${name}: add an entry to the SMOKE table in checks/src/smoke.ts`);
    if (tscFailure) throw new Error(tscFailure);
    const mine = tscErrors.filter((line) => line.startsWith(`${slug(name)}.`) || line.includes(`node_modules/${name}/`));
    expect(mine).toEqual([]);
  });
});

it('type-checks with no error outside the smoke files either', () => {
  if (installError) throw new Error(installError);
  const known = packages.filter((p) => SMOKE[p.name]).map((p) => slug(p.name));
  const others = tscErrors.filter((line) => !known.some((s) => line.startsWith(`${s}.`)) && !packages.some((p) => line.includes(`node_modules/${p.name}/`)));
  expect(others).toEqual([]);
});

it('lists every published package as a devDependency of @x/checks, so turbo builds it before the checks', () => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'checks', 'package.json'), 'utf8'));
  const missing = [...allPublished().keys()].filter((n) => manifest.devDependencies?.[n] !== 'workspace:*');
  expect({ missingFromChecksDevDependencies: missing }).toEqual({ missingFromChecksDevDependencies: [] });
});
