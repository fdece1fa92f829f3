import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkspacePackage } from './workspace';

/**
 * Least privilege, one file per published package: `packages/<pkg>/acl.txt` holds ONE line, the
 * Redis ACL rule a production user of the package needs, with `{prefix}` where the package's
 * `prefix` option goes (default `x`):
 *
 *   resetkeys ~{prefix}:lock:* resetchannels &{prefix}:lock:* -@all +hello +auth ... +evalsha +eval ...
 *
 * It lists the keys and channels under the prefix, what node-redis sends on connect (HELLO, AUTH,
 * CLIENT SETNAME for a named client, PING) and for cluster discovery (CLUSTER SLOTS, and CLUSTER
 * SHARDS that node-redis means to switch to), the commands the package sends itself (EVALSHA,
 * EVAL, SSUBSCRIBE, ...), and every command its Lua scripts call: Redis 7 checks commands run
 * inside a script against the caller's ACL. The README's "Redis requirements" section must hold
 * the line verbatim. `+client|setinfo` is left out: Redis 7.0 does not know it (ACL SETUSER
 * rejects it), and node-redis ignores a refusal of the CLIENT SETINFO it sends on connect.
 *
 * test/acl.test.ts creates a user with exactly that rule on the test run's standalone server
 * (`{prefix}` → `t*`, the prefixes `uniquePrefix()` makes) and runs the package's jest suite as that
 * user with `X_TARGETS=standalone` (the cluster is not covered) and `REDIS_ADMIN_URL` pointing the
 * suite's admin helpers (CLIENT PAUSE, CLIENT LIST) at the default user.
 */
export function aclRuleFile(pkg: WorkspacePackage): string {
  return join(pkg.dir, 'acl.txt');
}

/** The package's rule, or a clear error when the file is missing or not one line. */
export function readAclRule(pkg: WorkspacePackage): string {
  const file = aclRuleFile(pkg);
  if (!existsSync(file)) throw new Error(`no ACL rule for ${pkg.name}: write ${pkg.rel}/acl.txt (one line; see checks/src/acl.ts)`);
  const lines = readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length !== 1) throw new Error(`${pkg.rel}/acl.txt must hold exactly one line, found ${lines.length}`);
  const rule = lines[0]!;
  if (!rule.includes('{prefix}')) throw new Error(`${pkg.rel}/acl.txt must scope keys and channels with {prefix}`);
  if (!/(^|\s)-@all(\s|$)/.test(rule)) throw new Error(`${pkg.rel}/acl.txt must start from -@all and add commands one by one`);
  return rule;
}

/** The rule with the prefix filled in, split into ACL SETUSER arguments. */
export function aclArgs(rule: string, prefix: string): string[] {
  return rule.replaceAll('{prefix}', prefix).split(/\s+/).filter(Boolean);
}

/**
 * What a package's own test SUITE needs beyond its production rule. Keep this table short: every
 * entry is a test that cannot run as a least-privilege user, and says why.
 *
 * - `testOnlyCommands`: commands the suite's own fixtures send or its own example scripts call
 *   (redis-core's tests define throwaway scripts; a production rule cannot know them). Granted on
 *   top of the rule, on the same keys.
 * - `needsAdmin`: full test names (as jest prints them: describe titles and test title joined by
 *   spaces) that need admin rights on their own client. They must fail with NOPERM under the
 *   rule, and nothing else may fail; an entry whose test passes is reported as stale.
 */
export const ACL_SUITE_EXCEPTIONS: Record<string, { testOnlyCommands?: string; needsAdmin?: Record<string, string> }> = {
  '@x/redis-core': {
    testOnlyCommands: '+set +get +incr +hset +xadd +xreadgroup',
    needsAdmin: {
      'defineScript on standalone computes the SHA1 locally, as the server does': 'SCRIPT LOAD on its own client',
      'defineScript on standalone falls back to EVAL when the script cache was flushed, and caches it again': 'SCRIPT FLUSH on its own client',
    },
  },
  '@x/quota': {
    // "Nothing was written" checks list the keys under the test's prefix; one test reads a hash's size.
    testOnlyCommands: '+keys +hlen +exists',
  },
  '@x/ratelimit': {
    // "Nothing was written" checks list the keys under the test's prefix and read a key's TTL and a log's size.
    testOnlyCommands: '+keys +pttl +zcard',
  },
  '@x/inspect': {
    // The fixtures create a resource of every package (a held lock, a full semaphore, a queue item
    // in flight, a stream entry, a quota) with that package's own commands.
    testOnlyCommands: '+del +get +hexists +hgetall +hvals +llen +rpush +set +ssubscribe +subscribe +sunsubscribe +unsubscribe +xack +xautoclaim +xclaim +xgroup +xpending +xread +xreadgroup +zpopmin +zremrangebyrank',
  },
  '@x/streams': {
    // The tests read and seed raw state on their own client to check what a commit wrote.
    testOnlyCommands: '+xlen +exists +set +hgetall',
  },
};
