import type { Request, RequestHandler } from 'express';
import type { IdempotencyContext, IdempotencyHttpOptions } from './engine';
import { idempotencyMiddleware } from './middleware';
import type { IdempotencyStore } from './store';

export type { IdempotencyContext, IdempotencyHttpOptions } from './engine';

declare global {
  namespace Express {
    interface Request {
      /** Set by `@x/idempotency/express` on a request whose key it claimed. */
      idempotency?: IdempotencyContext;
    }
    interface Locals {
      /** Set by `@x/idempotency/express` on a request whose key it claimed. */
      idempotency?: IdempotencyContext;
    }
  }
}

/**
 * Express middleware after the IETF Idempotency-Key draft (see `idempotencyMiddleware`), typed
 * for Express: `scope` and `fingerprint` receive Express's `Request` with your augmentations,
 * and the claim is on `req.idempotency` and `res.locals.idempotency`. It may run before or
 * after `express.json()`: before it, it reads the raw body itself and hands it on.
 *
 * @example
 * import { idempotency } from '@x/idempotency/express';
 * app.post('/orders', idempotency(store, { required: true, scope: (req) => req.user?.id }), express.json(), createOrder);
 */
export function idempotency(store: IdempotencyStore, options: IdempotencyHttpOptions<Request> = {}): RequestHandler {
  const middleware = idempotencyMiddleware<Request>(store, options);
  return (req, res, next) => {
    void middleware(req, res, next);
  };
}
