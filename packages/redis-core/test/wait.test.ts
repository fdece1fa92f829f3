import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace, waitFor } from '../src';

describe.each(TARGETS)('waitFor on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  function spec(overrides: Partial<Parameters<typeof waitFor<string>>[0]> = {}) {
    const ks = keyspace(uniquePrefix(), 'wait', 'w');
    return {
      client,
      channel: ks.channel,
      target: 'me',
      timeoutMs: 200,
      timeoutError: () => new Error('timed out'),
      attempt: async () => ({ retryInMs: 60_000 }),
      ...overrides,
    };
  }

  it('rejects with the timeout error after timeoutMs and runs cancel first', async () => {
    const events: string[] = [];
    const error = await waitFor<string>(
      spec({ cancel: async () => void events.push('cancel'), timeoutError: () => new Error('late') }),
    ).catch((e: Error) => (events.push('rejected'), e));
    expect((error as Error).message).toBe('late');
    expect(events).toEqual(['cancel', 'rejected']);
  });

  it('rejects with the signal reason when aborted, and cancels', async () => {
    const controller = new AbortController();
    let cancelled = 0;
    setTimeout(() => controller.abort(new Error('stop')), 50);
    const aborted = waitFor<string>(spec({ timeoutMs: Infinity, signal: controller.signal, cancel: async () => void cancelled++ }));
    await expect(aborted).rejects.toThrow('stop');
    expect(cancelled).toBe(1);
  });

  it('rejects at once with an already aborted signal and attempts nothing', async () => {
    let attempts = 0;
    const signal = AbortSignal.abort(new Error('already'));
    await expect(waitFor<string>(spec({ signal, attempt: async () => (attempts++, { retryInMs: 10 }) }))).rejects.toThrow('already');
    expect(attempts).toBe(0);
  });

  it('re-checks on its timer when no message comes (a lost wake-up cannot strand it)', async () => {
    let attempts = 0;
    const value = await waitFor<string>(
      spec({ timeoutMs: 10_000, attempt: async () => (++attempts >= 3 ? { done: 'ok' } : { retryInMs: 20 }) }),
    );
    expect(value).toBe('ok');
    expect(attempts).toBe(3);
  });
});
