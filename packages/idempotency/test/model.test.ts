import fc from 'fast-check';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { IdempotencyFingerprintMismatchError, IdempotencyLeaseLostError, IdempotencyStore } from '../src';

// The record of one key, as a simple in-memory model.
type Model =
  | { kind: 'absent' }
  | { kind: 'running'; token: string; fp: number | undefined }
  | { kind: 'completed'; token: string; fp: number | undefined; value: number }
  | { kind: 'failed'; token: string; fp: number | undefined; message: string };

type Step =
  | { op: 'begin'; key: number; fp: number | undefined }
  | { op: 'complete'; key: number; pick: number; value: number }
  | { op: 'fail'; key: number; pick: number; retryable: boolean }
  | { op: 'set'; key: number; value: number; fp: number | undefined }
  | { op: 'get'; key: number };

const key = fc.nat({ max: 2 });
const fp = fc.option(fc.nat({ max: 1 }), { nil: undefined });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('begin' as const), key, fp }),
  fc.record({ op: fc.constant('complete' as const), key, pick: fc.nat({ max: 3 }), value: fc.integer() }),
  fc.record({ op: fc.constant('fail' as const), key, pick: fc.nat({ max: 3 }), retryable: fc.boolean() }),
  fc.record({ op: fc.constant('set' as const), key, value: fc.integer(), fp }),
  fc.record({ op: fc.constant('get' as const), key }),
);

const outcome = (error: unknown): string =>
  error instanceof IdempotencyLeaseLostError ? 'lease-lost' : error instanceof IdempotencyFingerprintMismatchError ? 'mismatch' : `unexpected ${String(error)}`;

describe.each(TARGETS)('IdempotencyStore against a model on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('agrees with the in-memory model on every claim, settle, set and get (random step lists)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
        // A long lease that is never renewed: nothing expires during a run.
        const store = new IdempotencyStore(client, { prefix: uniquePrefix(), leaseMs: 600_000 });
        const model: Model[] = [{ kind: 'absent' }, { kind: 'absent' }, { kind: 'absent' }];
        const tokens: string[][] = [[], [], []];
        let failures = 0;
        for (const s of steps) {
          const name = `k${s.key}`;
          const m = model[s.key]!;
          if (s.op === 'begin') {
            const mismatch = m.kind !== 'absent' && s.fp !== undefined && m.fp !== undefined && m.fp !== s.fp;
            const got = await store
              .begin<number>(name, { ...(s.fp === undefined ? {} : { fingerprint: { request: s.fp } }), keepAlive: false })
              .catch(outcome);
            if (mismatch) expect(got).toBe('mismatch');
            else if (m.kind === 'absent') {
              expect(got).toMatchObject({ status: 'acquired' });
              const token = (got as { token: string }).token;
              tokens[s.key]!.push(token);
              model[s.key] = { kind: 'running', token, fp: s.fp };
            } else if (m.kind === 'running') expect(got).toMatchObject({ status: 'in_progress' });
            else if (m.kind === 'completed') expect(got).toEqual({ status: 'completed', result: m.value });
            else expect(got).toMatchObject({ status: 'failed', error: { message: m.message } });
          } else if (s.op === 'complete' || s.op === 'fail') {
            const issued = tokens[s.key]!;
            const token = s.pick < issued.length ? issued[issued.length - 1 - s.pick]! : 'never-issued';
            const mine = m.kind !== 'absent' && m.token === token;
            if (s.op === 'complete') {
              const got = await store.complete(name, token, s.value).then(() => 'ok', outcome);
              if (mine && m.kind === 'running') {
                expect(got).toBe('ok');
                model[s.key] = { kind: 'completed', token, fp: m.fp, value: s.value };
              } else if (mine && m.kind === 'completed') expect(got).toBe('ok');
              else expect(got).toBe('lease-lost');
            } else {
              const message = `failure ${++failures}`;
              const got = await store.fail(name, token, { retryable: s.retryable, error: new Error(message) }).then(() => 'ok', outcome);
              if (m.kind === 'absent') expect(got).toBe(s.retryable ? 'ok' : 'lease-lost');
              else if (!mine) expect(got).toBe('lease-lost');
              else if (m.kind === 'running') {
                expect(got).toBe('ok');
                model[s.key] = s.retryable ? { kind: 'absent' } : { kind: 'failed', token, fp: m.fp, message };
              } else expect(got).toBe(m.kind === 'failed' && !s.retryable ? 'ok' : 'lease-lost');
            }
          } else if (s.op === 'set') {
            await store.set(name, s.value, s.fp === undefined ? {} : { fingerprint: { request: s.fp } });
            model[s.key] = { kind: 'completed', token: '', fp: s.fp, value: s.value };
          } else {
            expect(await store.get(name)).toBe(m.kind === 'completed' ? m.value : undefined);
          }
        }
      }),
      { numRuns: 30 },
    );
  });
});
