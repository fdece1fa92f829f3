/** jest globalTeardown: stops what the global setup started. */
export default async function globalTeardown(): Promise<void> {
  const servers = (globalThis as Record<string, unknown>).__X_TEST_SERVERS__ as Array<{ stop(): Promise<void> }> | undefined;
  await Promise.all((servers ?? []).map((s) => s.stop()));
}
