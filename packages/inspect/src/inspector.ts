import { InvalidArgumentError, LUA_HELPERS, assertPrefix, defineScript, type RedisClientLike } from '@x/redis-core';
import { PACKAGES, PACKAGE_NAMES, runAction, type Action, type PackageName, type ResourceRef } from './packages';

/** Options of an {@link Inspector}. */
export interface InspectorOptions {
  /**
   * Prefix of the resources' keys (the primitives' `prefix` option).
   * @default 'x'
   */
  prefix?: string;
  /**
   * Most resources listed per package.
   * @default 200
   */
  limit?: number;
  /**
   * Points of history kept per resource for the charts (one per snapshot).
   * @default 300
   */
  historyPoints?: number;
}

/** One resource in a snapshot: its reference and its state as its package describes it. */
export interface Described {
  ref: ResourceRef;
  state: Record<string, unknown>;
}

/** What the page shows at one moment. */
export interface Snapshot {
  /** Server time of the snapshot, epoch ms: the page counts every relative time from it. */
  now: number;
  prefix: string;
  packages: Record<PackageName, Described[]>;
  /** Per resource (`<package>/<space>/<name>`), series for the charts: `[serverMs, value][]` per metric. */
  history: Record<string, Record<string, Array<[number, number]>>>;
  /** A package that could not be read (e.g. NOPERM), with the error's message. */
  errors: Partial<Record<PackageName, string>>;
}

const timeScript = defineScript({ name: 'inspect.time', keys: [], source: `${LUA_HELPERS} return int(now_ms())` });

/** The metrics charted per package, taken from a state. */
const CHARTS: Partial<Record<PackageName, (s: any) => Record<string, number>>> = {
  leasedkeyq: (s) => ({ ready: s.ready, inFlight: s.inFlight }),
  streams: (s) => ({ lag: (s.groups as Array<{ lag: number | null; pending: number }>).reduce((n, g) => n + (g.lag ?? 0) + g.pending, 0), deadLetters: s.deadLetters }),
  quota: (s) => ({ available: s.available }),
  semaphore: (s) => ({ used: s.used, waiting: (s.waiters as unknown[]).length }),
};

/**
 * Composes the primitives' `describe` functions: a snapshot of every resource under a prefix,
 * found with `SCAN` on every master, with a short history for the charts, and the operator's
 * actions. The page and the JSON API of `x-inspect` are built on it.
 *
 * @example
 * const inspector = new Inspector(client, { prefix: 'x' });
 * const { packages } = await inspector.snapshot();
 * console.log(packages.lock.map((l) => l.ref.name));
 */
export class Inspector {
  readonly prefix: string;
  readonly #client: RedisClientLike;
  readonly #limit: number;
  readonly #points: number;
  readonly #history = new Map<string, Record<string, Array<[number, number]>>>();

  constructor(client: RedisClientLike, options: InspectorOptions = {}) {
    this.#client = client;
    this.prefix = assertPrefix(options.prefix ?? 'x');
    this.#limit = options.limit ?? 200;
    if (!Number.isSafeInteger(this.#limit) || this.#limit < 1 || this.#limit > 10_000) throw new InvalidArgumentError('limit must be an integer from 1 to 10000');
    this.#points = options.historyPoints ?? 300;
    if (!Number.isSafeInteger(this.#points) || this.#points < 1 || this.#points > 100_000) throw new InvalidArgumentError('historyPoints must be an integer from 1 to 100000');
  }

  /** Every resource of every package, described now; each call adds a point to the charts' history. */
  async snapshot(): Promise<Snapshot> {
    const packages = {} as Record<PackageName, Described[]>;
    const errors: Snapshot['errors'] = {};
    await Promise.all(
      PACKAGE_NAMES.map(async (pkg) => {
        try {
          const refs = await PACKAGES[pkg].list(this.#client, { prefix: this.prefix, limit: this.#limit });
          const states = await Promise.all(refs.map((ref) => PACKAGES[pkg](this.#client, ref.name, { prefix: this.prefix, ...(ref.space ? { space: ref.space } : {}) })));
          packages[pkg] = refs.flatMap((ref, i) => (states[i] ? [{ ref, state: states[i] as Record<string, unknown> }] : []));
        } catch (error) {
          packages[pkg] = [];
          errors[pkg] = error instanceof Error ? error.message : String(error);
        }
      }),
    );
    const now = Number(await timeScript.run(this.#client, []));
    const live = new Set<string>();
    for (const pkg of PACKAGE_NAMES) {
      const chart = CHARTS[pkg];
      if (!chart) continue;
      for (const { ref, state } of packages[pkg]) {
        const id = resourceId(pkg, ref);
        live.add(id);
        const series = this.#history.get(id) ?? {};
        for (const [metric, value] of Object.entries(chart(state))) {
          const points = (series[metric] ??= []);
          points.push([Number(state.now ?? now), Number(value)]);
          if (points.length > this.#points) points.splice(0, points.length - this.#points);
        }
        this.#history.set(id, series);
      }
    }
    for (const id of this.#history.keys()) if (!live.has(id)) this.#history.delete(id);
    return { now, prefix: this.prefix, packages, history: Object.fromEntries(this.#history), errors };
  }

  /**
   * One resource's state as its package describes it, or `null` when it holds nothing.
   *
   * @example
   * await inspector.describe('lock', 'orders');
   */
  async describe(pkg: string, name: string, options: { space?: string } = {}): Promise<Record<string, unknown> | null> {
    const describer = PACKAGES[assertPackage(pkg)];
    return (await describer(this.#client, name, { prefix: this.prefix, ...(options.space ? { space: options.space } : {}) })) as Record<string, unknown> | null;
  }

  /**
   * Runs an operator's action through the package that owns the keys; returns how many dead
   * letters moved for `redrive`, else null.
   *
   * @example
   * await inspector.act({ action: 'release', package: 'lock', name: 'orders', token });
   */
  async act(action: Action): Promise<number | null> {
    return runAction(this.#client, this.prefix, assertAction(action));
  }
}

/** The key of a resource in the history: `<package>/<space>/<name>` (JSON-escaped parts). */
export function resourceId(pkg: PackageName, ref: ResourceRef): string {
  return JSON.stringify([pkg, ref.space ?? '', ref.name]);
}

/** The package named `pkg`, or `InvalidArgumentError`. */
export function assertPackage(pkg: string): PackageName {
  if (!(PACKAGE_NAMES as readonly string[]).includes(pkg)) throw new InvalidArgumentError(`unknown package "${pkg}" (one of ${PACKAGE_NAMES.join(', ')})`);
  return pkg as PackageName;
}

function assertAction(a: unknown): Action {
  const o = (typeof a === 'object' && a !== null ? a : {}) as Record<string, unknown>;
  const str = (k: string) => typeof o[k] === 'string' && (o[k] as string).length > 0;
  if (!str('name')) throw new InvalidArgumentError('an action needs a name');
  if ((o.action === 'release' || o.action === 'drop-waiter') && (o.package === 'lock' || o.package === 'semaphore') && str('token')) return o as Action;
  if (o.action === 'redrive' && o.package === 'streams' && (o.space === undefined || str('space')) && (o.deadId === undefined || str('deadId'))) return o as Action;
  throw new InvalidArgumentError('unknown action: release or drop-waiter (lock, semaphore, with a token), redrive (streams)');
}
