import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { WakeBus } from '@x/redis-core';
import { startRedis } from '@x/testing';
import { createClient } from 'redis';

/** Every example exports a default function that runs against the client it is given. */
export type Example = (client: ReturnType<typeof createClient>) => Promise<void>;

// `pnpm demo` runs every example in order against REDIS_URL, or against a Redis it starts itself
// (testcontainers where Docker answers, else redis-server from the PATH). `pnpm demo lock` runs
// only the examples whose file names contain "lock".
async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const files = readdirSync(__dirname)
    .filter((f) => /^\d\d-.*\.ts$/.test(f))
    .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
    .sort();
  const redis = await startRedis();
  console.log(`Redis: ${redis.url} (${redis.source === 'env' ? 'from REDIS_URL' : `started with ${redis.source}`})`);
  const client = createClient({ url: redis.url });
  client.on('error', (e) => console.error('redis error', e));
  await client.connect();
  try {
    for (const file of files) {
      console.log(`\n=== ${file.replace(/\.ts$/, '')} ===`);
      const mod = (await import(join(__dirname, file))) as { default: Example };
      await mod.default(client as ReturnType<typeof createClient>);
    }
  } finally {
    await WakeBus.close(client);
    await client.close();
    await redis.stop();
  }
  console.log('\nAll examples ran.');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
