import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { freePort, spawnRedisServer, waitForPing } from './process';

/** A master watched by one Sentinel, for smoke tests of a node-redis sentinel client. */
export interface RedisSentinel {
  /** The master's name, as `createSentinel({ name })` takes it. */
  name: string;
  sentinelRootNodes: Array<{ host: string; port: number }>;
  stop(): Promise<void>;
}

/** Starts a `redis-server` master and a `redis-server --sentinel` that monitors it. */
export async function startSentinel(): Promise<RedisSentinel> {
  const master = await spawnRedisServer();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'x-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor x-master 127.0.0.1 ${master.port} 1\n`);
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPing(port);
  } catch (error) {
    child.kill('SIGKILL');
    await master.stop();
    throw error;
  }
  return {
    name: 'x-master',
    sentinelRootNodes: [{ host: '127.0.0.1', port }],
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      await master.stop();
    },
  };
}
