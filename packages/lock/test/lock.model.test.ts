import fc from 'fast-check';
import { TARGETS, connect, onEveryNode, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { Lock, type LockHandle } from '../src';

// Random acquire / release / extend / crash / pause steps by three clients, checked against a
// one-holder model: never two valid holders, fences strictly increase, and the server agrees
// with the model about who holds the lock.
type Step =
  | { kind: 'try'; who: number }
  | { kind: 'release'; who: number }
  | { kind: 'extend'; who: number }
  | { kind: 'crash'; who: number }
  | { kind: 'pause' };

const TTL_MS = 300;
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('try' as const), who: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), who: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('extend' as const), who: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), who: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const) }) },
);

describe.each(TARGETS)('Lock model on %s', (target) => {
  it('never has two valid holders and hands out strictly increasing fences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
        const prefix = uniquePrefix();
        const clients: TestClient[] = await Promise.all([0, 1, 2].map(() => connect(target)));
        const observerClient = await connect(target);
        const observer = new Lock(observerClient, 'model', { prefix, ttlMs: TTL_MS });
        const handles: Array<LockHandle | null> = [null, null, null];
        const fences: number[] = [];
        let modelHolder: number | null = null;
        const lockOf = (i: number) => new Lock(clients[i]!, 'model', { prefix, ttlMs: TTL_MS });
        const live = () => handles.filter((h): h is LockHandle => h !== null && !h.signal.aborted);
        const waitUntilFree = async () => {
          const end = Date.now() + 20_000;
          while (await observer.isLocked()) {
            if (Date.now() > end) throw new Error('lock never freed');
            await new Promise((r) => setTimeout(r, 20));
          }
        };
        try {
          for (const s of steps) {
            if (s.kind === 'try') {
              const h = await lockOf(s.who).tryAcquire();
              expect(h !== null).toBe(modelHolder === null);
              if (h) {
                fences.push(h.fence);
                handles[s.who] = h;
                modelHolder = s.who;
              }
            } else if (s.kind === 'release' || s.kind === 'extend') {
              const h = handles[s.who];
              if (h && modelHolder === s.who) {
                if (s.kind === 'release') {
                  await h.release();
                  handles[s.who] = null;
                  modelHolder = null;
                } else {
                  expect(await h.extend()).toBeGreaterThan(0);
                }
              }
            } else if (s.kind === 'crash') {
              // The process dies: its connection drops, its renewals stop, its lease runs out.
              clients[s.who]!.destroy();
              const h = handles[s.who];
              if (modelHolder === s.who) {
                await new Promise<void>((r) => (h!.signal.aborted ? r() : h!.signal.addEventListener('abort', () => r())));
                await waitUntilFree();
                modelHolder = null;
              }
              handles[s.who] = null;
              clients[s.who] = await connect(target);
            } else {
              await onEveryNode(target, ['CLIENT', 'PAUSE', String(TTL_MS * 2), 'ALL']);
              if (modelHolder !== null) {
                const h = handles[modelHolder]!;
                await new Promise<void>((r) => (h.signal.aborted ? r() : h.signal.addEventListener('abort', () => r())));
                await waitUntilFree();
                handles[modelHolder] = null;
                modelHolder = null;
              }
            }
            // Invariants after every step.
            const valid = live();
            expect(valid.length).toBeLessThanOrEqual(1);
            const state = await observer.inspect();
            expect(state.locked).toBe(modelHolder !== null);
            if (modelHolder !== null) expect(state.fence).toBe(handles[modelHolder]!.fence);
            for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!);
          }
        } finally {
          for (const h of handles) await h?.release().catch(() => undefined);
          for (const c of [...clients, observerClient]) {
            await WakeBus.close(c);
            await c.close().catch(() => undefined);
          }
        }
      }),
      { numRuns: 12 },
    );
  }, 240_000);
});
