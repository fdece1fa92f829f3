import { SocketClosedUnexpectedlyError, createClient } from 'redis';
import { adminUrl, clusterNodes, type Target } from './clients';
import { hasRedisServer, spawnRedisServer } from './process';

/** A fault in progress: `ended` resolves once the server is back to normal, `end()` ends it early. */
export interface Fault {
  readonly ended: Promise<void>;
  end(): Promise<void>;
}

/**
 * A `redis-server` of one test file's own, to inject faults into without disturbing the suites
 * that share the run's server: refusing connections or pausing it would fail them too.
 */
export interface FaultyRedis {
  url: string;
  port: number;
  /**
   * Closes client connections the way a network reset does (`CLIENT KILL`): all of them, or
   * only those of clients connected under `name` (a `duplicate()` keeps its parent's name).
   * Resolves with the number closed.
   */
  dropConnections(options?: { name?: string }): Promise<number>;
  /**
   * Refuses new connections for `ms` (`CONFIG SET maxclients 1`: the harness's own admin
   * connection holds the one slot, so a client that reconnects gets `ERR max number of clients
   * reached`). Connections that are open stay open; add `dropConnections` for an outage.
   */
  refuseConnections(ms: number): Promise<Fault>;
  /** Refuses new connections for `ms` and closes the open ones: the server looks down meanwhile. */
  outage(ms: number, options?: { name?: string }): Promise<Fault>;
  /**
   * Stops the server answering for `ms`: `CLIENT PAUSE` (`all`, the default, or `write`), or a
   * `SIGSTOP` of the process (`stop`: connections stay open and nothing answers, as on a server
   * stalled by the kernel or a long fork).
   */
  pause(ms: number, options?: { mode?: 'all' | 'write' | 'stop' }): Promise<Fault>;
  /**
   * Cuts `client`'s next script call (`evalSha`) off in flight: writes are paused, the call is
   * sent (and held by the pause, so it never runs), the connections of clients named `name` are
   * dropped, then writes resume. Resolves once the cut is done; the call rejects with the
   * client's socket error. The deterministic form of "the connection died while a re-check was
   * in flight".
   */
  cutNextCall(client: object, options: { name: string }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a dedicated `redis-server` (from the PATH, on a free port) with a fault injector.
 *
 * @example
 * const redis = await startFaultyRedis();
 * const client = await createClient({ url: redis.url, name: 'me' }).connect();
 * const outage = await redis.outage(1_000, { name: 'me' });
 * await outage.ended;
 */
export async function startFaultyRedis(): Promise<FaultyRedis> {
  if (!hasRedisServer()) {
    // A server given by REDIS_URL or a container cannot be stopped with SIGSTOP nor reconfigured safely.
    throw new Error('Fault tests need redis-server on the PATH (Debian/Ubuntu: apt-get install -y redis-server).');
  }
  const server = await spawnRedisServer();
  const url = `redis://127.0.0.1:${server.port}`;
  const admin = createClient({ url });
  admin.on('error', () => undefined);
  await admin.connect();
  const adminId = String(await admin.sendCommand(['CLIENT', 'ID']));
  const originalMaxClients = String(((await admin.sendCommand(['CONFIG', 'GET', 'maxclients'])) as string[])[1] ?? '10000');
  const active = new Set<Fault>();

  function fault(start: () => Promise<void>, restore: () => Promise<void>, ms: number): Promise<Fault> {
    return start().then(() => {
      let finish!: () => void;
      const ended = new Promise<void>((resolve) => (finish = resolve));
      let done = false;
      const end = async (): Promise<void> => {
        if (done) return ended;
        done = true;
        clearTimeout(timer);
        try {
          await restore();
        } finally {
          active.delete(handle);
          finish();
        }
      };
      const timer = setTimeout(() => void end().catch(() => undefined), ms);
      const handle: Fault = { ended, end };
      active.add(handle);
      return handle;
    });
  }

  async function dropConnections(options: { name?: string } = {}): Promise<number> {
    return killClients(admin, options.name, adminId);
  }

  const refuse = () => admin.sendCommand(['CONFIG', 'SET', 'maxclients', '1']).then(() => undefined);
  const accept = () => admin.sendCommand(['CONFIG', 'SET', 'maxclients', originalMaxClients]).then(() => undefined);

  return {
    url,
    port: server.port,
    dropConnections,
    refuseConnections: (ms) => fault(refuse, accept, ms),
    outage: (ms, options = {}) =>
      fault(
        async () => {
          await refuse();
          await dropConnections(options);
        },
        accept,
        ms,
      ),
    pause(ms, options = {}) {
      const mode = options.mode ?? 'all';
      if (mode === 'stop') {
        return fault(
          async () => void server.child.kill('SIGSTOP'),
          async () => void server.child.kill('SIGCONT'),
          ms,
        );
      }
      return fault(
        () => admin.sendCommand(['CLIENT', 'PAUSE', String(ms), mode.toUpperCase()]).then(() => undefined),
        () => admin.sendCommand(['CLIENT', 'UNPAUSE']).then(() => undefined),
        ms,
      );
    },
    cutNextCall(client, options) {
      const target = client as { evalSha: (...args: unknown[]) => Promise<unknown> };
      const own = Object.prototype.hasOwnProperty.call(target, 'evalSha');
      const original = target.evalSha;
      return new Promise<void>((resolve, reject) => {
        target.evalSha = function cut(this: unknown, ...args: unknown[]): Promise<unknown> {
          if (own) target.evalSha = original;
          else delete (target as Partial<typeof target>).evalSha;
          return (async () => {
            try {
              await admin.sendCommand(['CLIENT', 'PAUSE', '30000', 'WRITE']);
              const sent = original.apply(this, args);
              sent.catch(() => undefined);
              // Long enough for the call to reach the server and wait behind the pause.
              await new Promise((r) => setTimeout(r, 100));
              await killClients(admin, options.name, adminId);
              await admin.sendCommand(['CLIENT', 'UNPAUSE']);
              resolve();
              return await sent;
            } catch (error) {
              await admin.sendCommand(['CLIENT', 'UNPAUSE']).catch(() => undefined);
              reject(error);
              throw error;
            }
          })();
        };
      });
    },
    async stop() {
      for (const f of [...active]) await f.end().catch(() => undefined);
      await admin.close().catch(() => undefined);
      await server.stop();
    },
  };
}

/**
 * Closes the connections of clients connected under `name` on the server(s) of `target` (the
 * run's shared servers: only that test's own clients are touched). Resolves with the number closed.
 *
 * @example
 * const client = await connect('cluster', { name: 'victim' });
 * await dropConnections('cluster', 'victim');
 */
export async function dropConnections(target: Target, name: string): Promise<number> {
  const urls = target === 'standalone' ? [adminUrl()] : clusterNodes().map((n) => `redis://${n}`);
  let total = 0;
  for (const url of urls) {
    const admin = createClient({ url });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      total += await killClients(admin, name, String(await admin.sendCommand(['CLIENT', 'ID'])));
    } finally {
      await admin.close();
    }
  }
  return total;
}

async function killClients(admin: { sendCommand(args: string[]): Promise<unknown> }, name: string | undefined, skipId: string): Promise<number> {
  const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
  let killed = 0;
  for (const line of list.split('\n')) {
    const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
    if (!id || id === skipId) continue;
    if (name !== undefined && !line.includes(` name=${name} `)) continue;
    // A client that went away in between is not an error.
    killed += Number(await admin.sendCommand(['CLIENT', 'KILL', 'ID', id]).catch(() => 0));
  }
  return killed;
}

/**
 * Makes `client`'s next script call (`evalSha`) run on the server and then lose its reply, as
 * when a connection dies between the server's write and the client's read: the call rejects
 * with node-redis's `SocketClosedUnexpectedlyError` although its effect happened. Resolves once
 * that call ran. What a resend of the same call then does is what a test of "safe to resend" checks.
 *
 * @example
 * const lost = loseNextReply(client);
 * await held.release(); // resent after the lost reply
 * await lost;
 */
export function loseNextReply(client: object): Promise<void> {
  type Call = (...args: unknown[]) => Promise<unknown>;
  const target = client as Record<'evalSha' | 'eval', Call>;
  const saved = (['evalSha', 'eval'] as const).map((method) => ({
    method,
    own: Object.prototype.hasOwnProperty.call(target, method),
    original: target[method],
  }));
  const disarm = (): void => {
    for (const { method, own, original } of saved) {
      if (own) target[method] = original;
      else delete (target as Partial<typeof target>)[method];
    }
  };
  return new Promise<void>((resolve) => {
    for (const { method, original } of saved) {
      target[method] = async function lost(this: unknown, ...args: unknown[]): Promise<unknown> {
        // A call that fails (NOSCRIPT, before its EVAL) leaves the trap armed for the next one.
        await original.apply(this, args);
        disarm();
        resolve();
        throw new SocketClosedUnexpectedlyError();
      };
    }
  });
}
