import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '@x/redis-core';
import type { RateLimiter } from './limiter';
import type { RateLimitDecision } from './types';

/**
 * A request as the middleware reads it: node:http's, or Express's (which adds `ip`).
 *
 * @example
 * rateLimitMiddleware(limiter, { key: (req: RateLimitedRequest) => req.ip ?? req.socket.remoteAddress ?? 'unknown' });
 */
export type RateLimitedRequest = IncomingMessage & { ip?: string };

/**
 * `(req, res, next)`: Express middleware, also callable from a plain node:http handler (and from
 * anything that mounts Express middleware, such as `@fastify/middie`).
 *
 * @example
 * const limit: RateLimitMiddleware = rateLimitMiddleware(limiter, { key: (req) => req.ip ?? 'anonymous' });
 * await limit(req, res, (err) => (err ? fail(res, err) : handle(req, res)));
 */
export type RateLimitMiddleware = (req: RateLimitedRequest, res: ServerResponse, next: (error?: unknown) => unknown) => Promise<void>;

/**
 * Options of {@link rateLimitMiddleware}.
 *
 * @example
 * rateLimitMiddleware(limiter, { key: async (req) => (await accountOf(req)).id, cost: (req) => (req.method === 'POST' ? 5 : 1) });
 */
export interface RateLimitMiddlewareOptions {
  /** The key a request is counted under (an IP address, an account id); may be async. */
  key: (req: RateLimitedRequest) => string | Promise<string>;
  /**
   * The cost of a request: a number, or a function of the request (may be async).
   * @default 1
   */
  cost?: number | ((req: RateLimitedRequest) => number | Promise<number>);
  /**
   * When Redis fails, admit the request (and tell `onError`) instead of passing the error to `next`.
   * @default false
   */
  failOpen?: boolean;
  /** Told about a Redis error the middleware admitted a request through (`failOpen: true`). */
  onError?: (error: unknown, req: RateLimitedRequest) => void;
  /**
   * Sends the 429 response. The status, `Retry-After` and the RateLimit fields are already set.
   * @default ends the response with the text "Too Many Requests"
   */
  onLimited?: (req: RateLimitedRequest, res: ServerResponse, decision: RateLimitDecision) => unknown;
}

/**
 * Rate-limits HTTP requests with a {@link RateLimiter}: a refused request gets `429 Too Many
 * Requests` with `Retry-After` (seconds); every response carries the IETF draft's
 * `RateLimit-Policy` (every limit: `"<limit>-in-<windowMs>ms";q=<limit>;w=<seconds>`) and
 * `RateLimit` (`"<name>";r=<remaining>;t=<seconds until full>`) fields. A Redis error goes to
 * `next(error)`, or with `failOpen: true` the request is admitted and `onError` is told.
 *
 * @example
 * import express from 'express';
 * const app = express();
 * app.use(rateLimitMiddleware(limiter, { key: (req) => req.ip ?? 'anonymous' }));
 */
export function rateLimitMiddleware(limiter: RateLimiter, options: RateLimitMiddlewareOptions): RateLimitMiddleware {
  if (typeof options?.key !== 'function') throw new InvalidArgumentError('key must be a function of the request');
  const { cost = 1, failOpen = false, onError, onLimited } = options;
  if (typeof cost !== 'function' && typeof cost !== 'number') throw new InvalidArgumentError('cost must be a number or a function');
  const policy = limiter.limits.map((l) => `${policyName(l.limit, l.windowMs)};q=${l.limit};w=${Math.max(1, Math.ceil(l.windowMs / 1000))}`).join(', ');
  return async (req, res, next) => {
    let key: string;
    let units: number;
    try {
      key = await options.key(req);
      units = typeof cost === 'function' ? await cost(req) : cost;
    } catch (error) {
      next(error);
      return;
    }
    let decided: { decision: RateLimitDecision; serverTimeMs: number };
    try {
      decided = await limiter.decide(key, units);
    } catch (error) {
      if (failOpen && !InvalidArgumentError.isInstance(error)) {
        try {
          onError?.(error, req);
        } catch {
          // The request goes on whatever a reporting hook does.
        }
        next();
      } else {
        next(error);
      }
      return;
    }
    const { decision, serverTimeMs } = decided;
    res.setHeader('RateLimit-Policy', policy);
    res.setHeader(
      'RateLimit',
      decision.policies
        .map((p) => `${policyName(p.limit, p.windowMs)};r=${Math.max(0, p.remaining)};t=${Math.max(0, Math.ceil((p.resetAt - serverTimeMs) / 1000))}`)
        .join(', '),
    );
    if (decision.allowed) {
      next();
      return;
    }
    res.statusCode = 429;
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
    try {
      if (onLimited) await onLimited(req, res, decision);
      else {
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end('Too Many Requests');
      }
    } catch (error) {
      next(error);
    }
  };
}

function policyName(limit: number, windowMs: number): string {
  return `"${limit}-in-${windowMs}ms"`;
}
