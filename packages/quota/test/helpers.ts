import type { Target, TestClient } from '@x/testing';
import type { QuotaState } from '../src';

/** Every key under `prefix` on the target (every master of the cluster). */
export async function keysUnder(client: TestClient, target: Target, prefix: string): Promise<string[]> {
  const pattern = `${prefix}:*`;
  if (target === 'standalone') return (await client.keys(pattern)).sort();
  const cluster = client as unknown as { masters: unknown[]; nodeClient(node: unknown): TestClient | Promise<TestClient> };
  const all: string[] = [];
  for (const master of cluster.masters) {
    const node = await cluster.nodeClient(master);
    all.push(...(await node.keys(pattern)));
  }
  return all.sort();
}

/** The invariant every state must satisfy. */
export function expectBalanced(state: QuotaState): void {
  expect(state.available + state.reserved + state.leased + state.consumed).toBe(state.supplied);
  expect(state.available).toBeGreaterThanOrEqual(0);
  expect(state.reserved).toBeGreaterThanOrEqual(0);
  expect(state.leased).toBeGreaterThanOrEqual(0);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The balances without resource and version, to compare states. */
export function balances(state: QuotaState): Omit<QuotaState, 'resource' | 'version'> {
  const { available, reserved, leased, consumed, supplied } = state;
  return { available, reserved, leased, consumed, supplied };
}
