import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TARGETS, connect, spawnWorker, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { IdempotencyLeaseLostError, IdempotencyStore } from '../src';

interface Outcome {
  ok: boolean;
  pid?: number;
  dateOk?: boolean;
  big?: string;
  error?: string;
}

describe.each(TARGETS)('IdempotencyStore across processes on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('runs the operation exactly once for 50 concurrent runs of one key across 4 processes, and all 50 get its result', async () => {
    const prefix = uniquePrefix();
    const dir = mkdtempSync(join(tmpdir(), 'x-idem-'));
    const goFile = join(dir, 'go');
    try {
      const workers = [13, 13, 12, 12].map((count) =>
        spawnWorker(require.resolve('./fixtures/concurrent-run.cjs'), {
          args: [prefix, 'create-order:1', String(count), goFile],
          env: { X_TARGET: target },
        }),
      );
      await Promise.all(workers.map((w) => w.reached('ready')));
      writeFileSync(goFile, 'go');
      expect(await Promise.all(workers.map((w) => w.exited()))).toEqual([0, 0, 0, 0]);

      const reports = workers.map((w) => w.reports[0] as { executions: number; outcomes: Outcome[] });
      // Every process counts the executions it made: exactly one in all four together.
      expect(reports.map((r) => r.executions).reduce((a, b) => a + b, 0)).toBe(1);
      const outcomes = reports.flatMap((r) => r.outcomes);
      expect(outcomes).toHaveLength(50);
      expect(outcomes.filter((o) => !o.ok)).toEqual([]);
      const runner = reports.find((r) => r.executions === 1)!;
      const pid = workers[reports.indexOf(runner)]!.child.pid;
      for (const o of outcomes) expect(o).toEqual({ ok: true, pid, dateOk: true, big: String(2n ** 70n) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets the key be claimed after leaseMs when its worker is SIGKILLed mid-operation, and refuses the dead worker\'s late complete', async () => {
    const prefix = uniquePrefix();
    const key = 'charge:crash';
    const leaseMs = 3_000;
    const worker = spawnWorker(require.resolve('./fixtures/crash-mid-run.cjs'), {
      crashAt: 'mid-operation',
      args: [prefix, key, String(leaseMs)],
      env: { X_TARGET: target },
    });
    await worker.reached('mid-operation');
    const { token: deadToken } = worker.reports[0] as { token: string };
    await worker.kill();

    const store = new IdempotencyStore(client, { prefix, leaseMs });
    // The dead worker renewed its lease until it died: the key is still taken.
    expect(await store.begin(key)).toMatchObject({ status: 'in_progress' });

    // Nobody wakes this waiter (the owner is dead): its re-check, bounded by the lease, finds the
    // lease run out and claims the key.
    let runs = 0;
    const result = await store.run(key, async () => (++runs, 'finished by the survivor'), { waitMs: 30_000 });
    expect(result).toBe('finished by the survivor');
    expect(runs).toBe(1);

    await expect(store.complete(key, deadToken, 'late result')).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
    await expect(store.fail(key, deadToken, { retryable: false, error: new Error('late') })).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
    await expect(store.fail(key, deadToken, { retryable: true })).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
    expect(await store.get(key)).toBe('finished by the survivor');
    expect(await store.begin(key)).toEqual({ status: 'completed', result: 'finished by the survivor' });
  });
});
