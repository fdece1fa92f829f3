/**
 * Package-internal: the middleware stops renewing a claim whose client went away. A registered
 * symbol, because every entry point (the main one and each framework's) is bundled on its own.
 */
export const ABANDON: unique symbol = Symbol.for('@x/idempotency.abandon') as never;
