// The release flow on a throwaway copy of the repository's manifests: `changeset version` bumps
// exactly the packages a changeset names, plus dependents of a bumped package by the configured
// rule (.changeset/config.json: updateInternalDependencies "patch", i.e. a dependent whose range
// no longer admits the new version is bumped by a patch), and never touches a private package.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { describeRun, run } from '../src/exec';
import { CORE, ROOT, workspaceDirs } from '../src/workspace';

const copy = mkdtempSync(join(tmpdir(), 'x-checks-release-'));
const dirs = workspaceDirs();
const changesetBin = join(ROOT, 'node_modules', '@changesets', 'cli', 'bin.js');

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function manifests(): Map<string, { dir: string; raw: string; json: Manifest }> {
  const out = new Map<string, { dir: string; raw: string; json: Manifest }>();
  for (const dir of dirs) {
    const raw = readFileSync(join(copy, dir, 'package.json'), 'utf8');
    const json = JSON.parse(raw) as Manifest;
    out.set(json.name, { dir, raw, json });
  }
  return out;
}

/** The semver range a `workspace:` range stands for, given the dependency's current version. */
function effectiveRange(range: string, dependencyVersion: string): string {
  if (!range.startsWith('workspace:')) return range;
  const rest = range.slice('workspace:'.length);
  if (rest === '*') return '*';
  if (rest === '^' || rest === '~') return `${rest}${dependencyVersion}`;
  return rest;
}

/**
 * What the configured rule predicts after `bumps` (name → patch/minor/major): each named package
 * moves by its bump; a published package that depends (dependencies, optional or peer) on a
 * bumped one through a range that no longer admits the new version moves by a patch; nothing else
 * moves, and private packages never do.
 */
function predict(before: Map<string, { json: Manifest }>, bumps: Record<string, 'patch' | 'minor' | 'major'>): Map<string, string> {
  const next = new Map<string, string>();
  for (const [name, { json }] of before) next.set(name, json.version);
  const moved = new Map<string, string>();
  for (const [name, bump] of Object.entries(bumps)) moved.set(name, semver.inc(before.get(name)!.json.version, bump)!);
  // Dependents of dependents move too, until nothing changes.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, { json }] of before) {
      if (json.private || moved.has(name)) continue;
      const ranges = { ...json.peerDependencies, ...json.optionalDependencies, ...json.dependencies };
      for (const [dep, range] of Object.entries(ranges)) {
        const newVersion = moved.get(dep);
        if (!newVersion) continue;
        if (!semver.satisfies(newVersion, effectiveRange(range, before.get(dep)!.json.version))) {
          moved.set(name, semver.inc(json.version, 'patch')!);
          changed = true;
          break;
        }
      }
    }
  }
  for (const [name, version] of moved) next.set(name, version);
  return next;
}

async function version(changesetName: string, releases: Record<string, 'patch' | 'minor' | 'major'>) {
  const before = manifests();
  const frontMatter = Object.entries(releases).map(([name, bump]) => `"${name}": ${bump}`).join('\n');
  writeFileSync(join(copy, '.changeset', `${changesetName}.md`), `---\n${frontMatter}\n---\n\nRelease-flow check: ${changesetName}.\n`);
  const result = await run(process.execPath, [changesetBin, 'version'], { cwd: copy, timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(describeRun('changeset version', result));
  const after = manifests();
  const expected = predict(before, releases);
  const versions = (m: Map<string, { json: Manifest }>) => Object.fromEntries([...m].map(([n, { json }]) => [n, json.version]));
  return { before, after, expected: Object.fromEntries(expected), actual: versions(after) };
}

beforeAll(() => {
  // The manifests, the workspace list and the changesets config; no existing changeset is copied.
  copyFileSync(join(ROOT, 'package.json'), join(copy, 'package.json'));
  copyFileSync(join(ROOT, 'pnpm-workspace.yaml'), join(copy, 'pnpm-workspace.yaml'));
  mkdirSync(join(copy, '.changeset'));
  copyFileSync(join(ROOT, '.changeset', 'config.json'), join(copy, '.changeset', 'config.json'));
  for (const dir of dirs) {
    mkdirSync(join(copy, dir), { recursive: true });
    copyFileSync(join(ROOT, dir, 'package.json'), join(copy, dir, 'package.json'));
    if (existsSync(join(ROOT, dir, 'CHANGELOG.md'))) copyFileSync(join(ROOT, dir, 'CHANGELOG.md'), join(copy, dir, 'CHANGELOG.md'));
  }
  // The changelog generator named in the config resolves from the copy's node_modules.
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  if (!existsSync(changesetBin)) throw new Error(`@changesets/cli is not installed at the root (${changesetBin}): run pnpm install`);
});

afterAll(() => {
  rmSync(copy, { recursive: true, force: true });
});

describe('changeset version on a throwaway copy', () => {
  it('starts with no pending changeset', () => {
    expect(readdirSync(join(copy, '.changeset')).filter((f) => f.endsWith('.md'))).toEqual([]);
  });

  it('bumps only @x/lock (and what depends on it, by the rule) for a changeset naming only @x/lock (minor)', async () => {
    const { before, after, expected, actual } = await version('lock-only', { '@x/lock': 'minor' });
    expect(actual).toEqual(expected);
    expect(actual['@x/lock']).toBe(semver.inc(before.get('@x/lock')!.json.version, 'minor'));
    // @x/inspect depends on every primitive: the rule moves it by a patch.
    const moved = [...before].filter(([name, { json }]) => expected[name] !== json.version).map(([name]) => name);
    for (const [name, { raw }] of before) if (!moved.includes(name)) expect({ name, raw: after.get(name)!.raw }).toEqual({ name, raw });
    const changelogs = dirs.filter((dir) => existsSync(join(copy, dir, 'CHANGELOG.md')) && !existsSync(join(ROOT, dir, 'CHANGELOG.md')));
    expect(changelogs.sort()).toEqual(moved.map((name) => before.get(name)!.dir).sort());
    expect(readdirSync(join(copy, '.changeset')).filter((f) => f.endsWith('.md'))).toEqual([]);
  });

  it('bumps @x/redis-core (patch) and its dependents by the configured rule, leaving private packages untouched', async () => {
    const config = JSON.parse(readFileSync(join(copy, '.changeset', 'config.json'), 'utf8'));
    expect(config.updateInternalDependencies).toBe('patch');
    const { before, after, expected, actual } = await version('core-only', { [CORE]: 'patch' });
    expect(actual).toEqual(expected);
    expect(actual[CORE]).toBe(semver.inc(before.get(CORE)!.json.version, 'patch'));
    const dependents = [...before].filter(([, { json }]) => !json.private && json.dependencies?.[CORE]).map(([n]) => n);
    expect(dependents.length).toBeGreaterThan(0);
    for (const [name, { json, raw }] of before) {
      if (json.private) expect({ name, raw: after.get(name)!.raw }).toEqual({ name, raw });
    }
    // Whatever range a dependent declares, the released versions must satisfy each other.
    for (const name of dependents) {
      const range = effectiveRange(after.get(name)!.json.dependencies![CORE]!, actual[CORE]!);
      expect({ name, range, satisfied: semver.satisfies(actual[CORE]!, range) }).toEqual({ name, range, satisfied: true });
    }
  });
});
