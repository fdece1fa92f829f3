#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { serveInspector } from './server';
import { Inspector, assertPackage } from './inspector';

const USAGE = `usage:
  x-inspect --url redis://127.0.0.1:6379 [--cluster] [--prefix x] [--port 7380] [--host 127.0.0.1] [--allow-actions]
  x-inspect --url ... [--prefix x] --json <package> <name> [--space default]
packages: lock, semaphore, event, quota, idempotency, leasedkeyq, streams`;

/** Runs the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        cluster: { type: 'boolean', default: false },
        prefix: { type: 'string', default: 'x' },
        port: { type: 'string', default: '7380' },
        host: { type: 'string', default: '127.0.0.1' },
        'allow-actions': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        space: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = args;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.url || (values.json && positionals.length !== 2) || (!values.json && positionals.length > 0)) {
    console.error(USAGE);
    return 2;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`--port must be a port number\n${USAGE}`);
    return 2;
  }
  // redis is the peer dependency: loaded only here, so the library never imports it.
  const redis = require('redis') as typeof import('redis');
  // Give up on a Redis that never answered (a typo in --url); once connected, reconnect for ever.
  let connected = false;
  const socket = {
    connectTimeout: 5_000,
    reconnectStrategy: (retries: number) => (!connected && retries >= 3 ? new Error(`cannot reach ${values.url}`) : Math.min(100 * 2 ** retries, 2_000)),
  };
  const client = values.cluster
    ? redis.createCluster({ rootNodes: values.url.split(',').map((url) => ({ url, socket })) })
    : redis.createClient({ url: values.url, socket });
  let lastError = '';
  client.on('error', (error: Error) => {
    if (error.message !== lastError) console.error(`redis: ${error.message}`);
    lastError = error.message;
  });
  try {
    await client.connect();
  } catch (error) {
    console.error(`x-inspect: ${(error as Error).message}`);
    return 1;
  }
  connected = true;
  if (values.json) {
    try {
      const [pkg, name] = positionals as [string, string];
      const state = await new Inspector(client, { prefix: values.prefix }).describe(assertPackage(pkg), name, values.space ? { space: values.space } : {});
      console.log(JSON.stringify(state, null, 2));
      return state === null ? 1 : 0;
    } catch (error) {
      console.error((error as Error).message);
      return 2;
    } finally {
      await client.close();
    }
  }
  const server = await serveInspector(client, { prefix: values.prefix, port, host: values.host, allowActions: values['allow-actions'] });
  console.log(`x-inspect: ${server.url} (prefix ${values.prefix}${values['allow-actions'] ? ', actions allowed' : ', read-only'})`);
  const stop = async () => {
    await server.close();
    await client.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise<number>(() => undefined);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
