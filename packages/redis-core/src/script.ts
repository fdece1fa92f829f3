import { createHash } from 'node:crypto';
import type { RedisClientLike } from './client';
import { adaptClient } from './clients';
import { InvalidArgumentError, XRedisError } from './errors';
import { RedisUnavailableError, isTransient } from './faults';

/** Maps a business error code returned by a script to the error to throw. */
export type ScriptErrorMap = Record<string, (detail: string) => Error>;

/** A Lua script whose SHA1 is known locally. */
export interface Script {
  readonly name: string;
  readonly keys: readonly string[];
  readonly source: string;
  readonly sha: string;
  /**
   * Runs the script in one round trip (EVALSHA, EVAL on NOSCRIPT) and returns its reply with
   * Buffers turned into strings. `keys` must follow the order of the `keys` the script declares.
   * `errors` adds the caller's context to the script's own map (`NOT_HELD` → the error of this
   * lock, with its name), so that a script is defined once per module, not once per resource.
   */
  run(client: RedisClientLike, keys: readonly string[], args?: readonly (string | number)[], errors?: ScriptErrorMap): Promise<unknown>;
}

/**
 * Defines a script. Business errors come back from Lua as `redis.error_reply('CODE detail')` and
 * are thrown as the error `errors[CODE]` builds (`INVALID_ARGUMENT` becomes `InvalidArgumentError`
 * unless mapped otherwise); any other `CODE` of upper-case letters becomes a plain `XRedisError`
 * with that code. A transient fault (see {@link isTransient}) is thrown as a `RedisUnavailableError`
 * whose `cause` is the fault.
 *
 * @example
 * const release = defineScript({
 *   name: 'lock.release', keys: ['state'],
 *   source: `if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
 *              return redis.error_reply('LOCK_NOT_HELD not the holder') end
 *            redis.call('DEL', KEYS[1]) return 1`,
 *   errors: { LOCK_NOT_HELD: (detail) => new LockNotHeldError(detail) },
 * });
 * await release.run(client, [ks.key('state')], [token]);
 */
export function defineScript(definition: {
  name: string;
  keys: readonly string[];
  source: string;
  errors?: ScriptErrorMap;
}): Script {
  const { name, keys, source } = definition;
  const errors: ScriptErrorMap = { INVALID_ARGUMENT: (detail) => new InvalidArgumentError(detail), ...definition.errors };
  const sha = createHash('sha1').update(source).digest('hex');
  return {
    name,
    keys,
    source,
    sha,
    async run(client, callKeys, args = [], callErrors) {
      if (callKeys.length !== keys.length) {
        throw new TypeError(`script ${name} takes ${keys.length} keys, got ${callKeys.length}`);
      }
      const options = { keys: [...callKeys], arguments: args.map(String) };
      const seam = adaptClient(client);
      try {
        let reply: unknown;
        try {
          reply = await seam.evalSha(sha, options);
        } catch (error) {
          if (!messageOf(error).startsWith('NOSCRIPT')) throw error;
          reply = await seam.eval(source, options);
        }
        return normalizeReply(reply);
      } catch (error) {
        // A fault of the connection or the server is thrown as one typed error, the fault as its
        // cause: waiters retry it, and a caller of a non-waiting call can tell it from a refusal.
        if (isTransient(error, client)) throw new RedisUnavailableError(`script ${name}`, error);
        throw mapScriptError(error, errors, callErrors);
      }
    },
  };
}

/**
 * Turns a script reply into plain values: Buffers become strings, arrays are walked. Integers,
 * strings and arrays are what scripts return, and RESP2 and RESP3 agree on them.
 *
 * @example
 * normalizeReply([Buffer.from('ok'), 1]); // ['ok', 1]
 */
export function normalizeReply(reply: unknown): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (Array.isArray(reply)) return reply.map(normalizeReply);
  return reply;
}

function mapScriptError(error: unknown, errors: ScriptErrorMap, callErrors: ScriptErrorMap | undefined): unknown {
  const message = messageOf(error);
  const match = /^([A-Z][A-Z0-9_]+)(?: (.*))?$/s.exec(message);
  if (!match || match[1] === 'ERR' || match[1] === 'NOSCRIPT' || match[1] === 'WRONGTYPE' || match[1] === 'BUSY') {
    return error;
  }
  // Redis appends the script's location to errors raised inside it (a failing redis.call, or a
  // Lua error({err=...}) from a nested function), not to a top-level redis.error_reply.
  const located = /(?:^|\s)script: [0-9a-f]{40}|@user_script/.test(message);
  const [, code = '', rawDetail = ''] = match;
  const detail = located ? rawDetail.replace(/\s*script: [0-9a-f]{40}.*$/s, '') : rawDetail;
  const build = callErrors?.[code] ?? errors[code];
  if (build) return build(detail);
  // A code the script did not declare, with a location, is the server's own (NOGROUP, OOM, ...).
  if (located) return error;
  if (/^(MOVED|ASK|CROSSSLOT|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|MASTERDOWN|NOREPLICAS|UNBLOCKED|NOPERM|OOM|NOAUTH)$/.test(code)) {
    return error;
  }
  return new XRedisError(code, detail || code, { cause: error });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
