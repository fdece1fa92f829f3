import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { createEngine, type ClaimedRequest, type HttpIncoming, type HttpReply, type IdempotencyContext, type IdempotencyHttpOptions } from './engine';
import type { IdempotencyStore } from './store';

export type { IdempotencyContext, IdempotencyHttpOptions } from './engine';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `@x/idempotency/fastify` on a request whose key it claimed, else null. */
    idempotency: IdempotencyContext | null;
  }
}

/**
 * Options of the Fastify plugin: the store, and the options of every adapter.
 *
 * @example
 * await app.register(idempotency, { store, required: true, scope: (request) => request.user.id });
 */
export interface IdempotencyPluginOptions extends IdempotencyHttpOptions<FastifyRequest> {
  store: IdempotencyStore;
}

const KEY = Symbol('idempotency.key');
const CLAIM = Symbol('idempotency.claim');
type Marked = FastifyRequest & { [KEY]?: string; [CLAIM]?: ClaimedRequest };

/**
 * Fastify plugin after the IETF Idempotency-Key draft, on Fastify's own hooks (no middie):
 * `onRequest` answers a missing or malformed key (400) and a declared body over
 * `maxRequestBytes` (413); `preHandler`, after Fastify parsed the body, fingerprints it and
 * claims the key or answers (replay, 409, 422); `onSend` stores the response before it is sent.
 * It applies to the routes of the scope it is registered in (and their children). The claim is
 * on `request.idempotency`.
 *
 * @example
 * import { idempotency } from '@x/idempotency/fastify';
 * await app.register(idempotency, { store, required: true });
 * app.post('/orders', async (request, reply) => reply.code(201).send(await createOrder(request.body, request.idempotency!.signal)));
 */
export const idempotency: FastifyPluginAsync<IdempotencyPluginOptions> = async (app: FastifyInstance, options: IdempotencyPluginOptions) => {
  const { store, ...rest } = options;
  const engine = createEngine<FastifyRequest>(store, rest);
  const incoming = (request: FastifyRequest): HttpIncoming<FastifyRequest> => ({
    req: request,
    method: request.method,
    url: request.url,
    header: (name) => request.headers[name],
    // Fastify has parsed (and bounded, by its bodyLimit) the body before preHandler.
    body: async () => ({ parsed: request.body }),
  });
  const send = (reply: FastifyReply, answer: HttpReply): FastifyReply => {
    reply.code(answer.status);
    for (const [name, value] of answer.headers) reply.header(name, value);
    return reply.send(answer.body ?? '');
  };

  if (!app.hasRequestDecorator('idempotency')) app.decorateRequest('idempotency', null);
  app.addHook('onRequest', async (request: Marked, reply) => {
    const checked = engine.check(incoming(request));
    if (checked.kind === 'reply') return send(reply, checked.reply);
    if (checked.kind === 'key') request[KEY] = checked.key;
  });
  app.addHook('preHandler', async (request: Marked, reply) => {
    const key = request[KEY];
    if (key === undefined) return;
    const started = await engine.claim(incoming(request), key);
    if (started.kind === 'reply') return send(reply, started.reply);
    if (started.kind === 'claimed') {
      request[CLAIM] = started.claim;
      request.idempotency = started.claim.context;
    }
  });
  app.addHook('onSend', async (request: Marked, reply, payload) => {
    const claim = request[CLAIM];
    if (!claim) return payload;
    const body =
      payload === null || payload === undefined
        ? Buffer.alloc(0)
        : typeof payload === 'string'
          ? Buffer.from(payload)
          : Buffer.isBuffer(payload)
            ? payload
            : null; // a stream: stored without its body
    await claim.settle(reply.statusCode, reply.getHeaders(), body !== null && body.length > engine.maxBodyBytes ? null : body);
    return payload;
  });
  app.addHook('onRequestAbort', async (request: Marked) => {
    request[CLAIM]?.abandon();
  });
};

// What fastify-plugin would set: the hooks apply to the scope that registers the plugin, not to
// an encapsulated child of it.
Object.assign(idempotency, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: '@x/idempotency' });
