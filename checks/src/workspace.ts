import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository's root (this package lives in `<root>/checks`). */
export const ROOT = resolve(__dirname, '../..');

/** The foundation every primitive depends on. */
export const CORE = '@x/redis-core';

/** A package of the workspace, as its package.json says. */
export interface WorkspacePackage {
  name: string;
  version: string;
  /** Absolute directory. */
  dir: string;
  /** Directory relative to the root, e.g. `packages/lock`. */
  rel: string;
  private: boolean;
  manifest: Record<string, any>;
}

function readPackage(rel: string): WorkspacePackage | undefined {
  const dir = join(ROOT, rel);
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return undefined;
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
  return { name: manifest.name, version: manifest.version, dir, rel, private: manifest.private === true, manifest };
}

/** The directories `pnpm-workspace.yaml` lists (`dir` and `dir/*` entries), relative to the root. */
export function workspaceDirs(root = ROOT): string[] {
  const yaml = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
  const dirs: string[] = [];
  for (const match of yaml.matchAll(/^\s*-\s*['"]?([^'"\s#]+)['"]?\s*$/gm)) {
    const entry = match[1]!;
    if (entry.endsWith('/*')) {
      const parent = entry.slice(0, -2);
      for (const child of readdirSync(join(root, parent), { withFileTypes: true })) {
        if (child.isDirectory() && existsSync(join(root, parent, child.name, 'package.json'))) dirs.push(`${parent}/${child.name}`);
      }
    } else if (existsSync(join(root, entry, 'package.json'))) {
      dirs.push(entry);
    }
  }
  return dirs.sort();
}

/** Every package of the workspace (not the root). */
export function workspacePackages(): WorkspacePackage[] {
  return workspaceDirs().map(readPackage).filter((p): p is WorkspacePackage => p !== undefined);
}

/**
 * The published packages: every `packages/*` whose package.json is not `"private"`, with
 * `@x/redis-core` first. `X_CHECK_PACKAGES=@x/lock,@x/redis-core` narrows a local run to some of
 * them (CI leaves it unset: every published package is checked).
 */
export function publishedPackages(): WorkspacePackage[] {
  const all = readdirSync(join(ROOT, 'packages'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => readPackage(`packages/${d.name}`))
    .filter((p): p is WorkspacePackage => p !== undefined && !p.private)
    .sort((a, b) => (a.name === CORE ? -1 : b.name === CORE ? 1 : a.name.localeCompare(b.name)));
  const only = process.env.X_CHECK_PACKAGES?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!only || only.length === 0) return all;
  for (const name of only) {
    if (!all.some((p) => p.name === name)) throw new Error(`X_CHECK_PACKAGES names ${name}, which is not a published package`);
  }
  return all.filter((p) => only.includes(p.name));
}

/** `@x/lock` → `x-lock`: safe in file names. */
export function slug(name: string): string {
  return name.replace(/^@/, '').replace(/\//g, '-');
}

/** The names of ours (`@x/...`) among a manifest's dependencies of the given kinds. */
export function ourDependencies(
  manifest: Record<string, any>,
  kinds: readonly string[] = ['dependencies', 'optionalDependencies', 'peerDependencies'],
): string[] {
  const names = new Set<string>();
  for (const kind of kinds) for (const name of Object.keys(manifest[kind] ?? {})) if (name.startsWith('@x/')) names.add(name);
  return [...names].sort();
}

/**
 * A primitive talks to Redis: `redis` is its peer and it depends on `@x/redis-core`. An
 * integration such as `@x/otel` has its own peer (`@opentelemetry/api`), sends no command and
 * depends on nothing of ours; the ACL check has nothing to grant it.
 */
export function talksToRedis(pkg: WorkspacePackage): boolean {
  return pkg.manifest.peerDependencies?.redis !== undefined;
}

/** What a published package may declare of ours: nothing for the core and integrations, else the core. */
export function expectedOurs(pkg: WorkspacePackage): string[] {
  // @x/inspect composes the `describe` each primitive exports, so it depends on all of them.
  if (pkg.name === '@x/inspect') return [CORE, ...INSPECTED].sort();
  return pkg.name === CORE || !talksToRedis(pkg) ? [] : [CORE];
}

/** The primitives whose `describe` @x/inspect composes. */
const INSPECTED = ['@x/event', '@x/idempotency', '@x/leasedkeyq', '@x/lock', '@x/quota', '@x/semaphore', '@x/streams'];

/** `name@range` of every third-party peer the published packages declare besides `redis`. */
export function otherPeers(packages: readonly WorkspacePackage[]): string[] {
  const peers = new Map<string, string>();
  for (const pkg of packages) {
    for (const [name, range] of Object.entries((pkg.manifest.peerDependencies ?? {}) as Record<string, string>)) {
      if (name !== 'redis' && !name.startsWith('@x/')) peers.set(name, range);
    }
  }
  return [...peers].map(([name, range]) => `${name}@${range}`).sort();
}
