// Least privilege: each published package's packages/<pkg>/acl.txt (format: checks/src/acl.ts) is
// one line, its README holds it verbatim, and the package's own jest suite passes when run as a
// Redis ACL user limited to exactly that rule on the test run's standalone server (X_TARGETS=
// standalone: the cluster half of the suite is not run as that user). The suite's admin helpers
// (CLIENT PAUSE, CLIENT LIST) keep the default user through REDIS_ADMIN_URL.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { redisUrl } from '@x/testing';
import { ACL_SUITE_EXCEPTIONS, aclArgs, readAclRule } from '../src/acl';
import { describeRun, run } from '../src/exec';
import { publishedPackages, slug, talksToRedis } from '../src/workspace';

/** What `uniquePrefix()` of @x/testing makes: `t` and 12 hex digits. */
const TEST_PREFIX_PATTERN = 't*';

// Integrations that send no command (@x/otel) have no rule to check.
const packages = publishedPackages().filter(talksToRedis);
const tmp = mkdtempSync(join(tmpdir(), 'x-checks-acl-'));
let admin: { sendCommand(args: string[]): Promise<unknown>; close(): Promise<unknown> };

beforeAll(async () => {
  const client = createClient({ url: redisUrl(), RESP: 2 });
  client.on('error', () => undefined);
  await client.connect();
  admin = client as unknown as typeof admin;
});

afterAll(async () => {
  await admin?.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface AssertionResult {
  fullName: string;
  status: string;
  failureMessages: string[];
}

/** ACL LOG entries of one user, as `reason context object` lines (RESP2: flat key/value arrays). */
async function aclDenials(user: string): Promise<string[]> {
  const entries = (await admin.sendCommand(['ACL', 'LOG', '256'])) as unknown as unknown[][];
  const lines = new Map<string, number>();
  for (const entry of entries) {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < entry.length; i += 2) fields[String(entry[i])] = String(entry[i + 1]);
    if (fields.username !== user) continue;
    const line = `${fields.reason} ${fields.context} ${fields.object}`;
    lines.set(line, (lines.get(line) ?? 0) + Number(fields.count ?? 1));
  }
  return [...lines].map(([line, count]) => `${line} (×${count})`);
}

describe.each(packages.map((p) => [p.name, p] as const))('%s', (name, pkg) => {
  it('has its ACL rule in acl.txt: one line, keys and channels under {prefix}, from -@all', () => {
    expect(() => readAclRule(pkg)).not.toThrow();
  });

  it('states the rule verbatim in its README', () => {
    const rule = readAclRule(pkg);
    const readme = readFileSync(join(pkg.dir, 'README.md'), 'utf8');
    if (!readme.includes(rule)) throw new Error(`${pkg.rel}/README.md does not contain the line of ${pkg.rel}/acl.txt verbatim:\n${rule}`);
  });

  it('passes its own jest suite (standalone) as a Redis user limited to exactly that rule', async () => {
    const rule = readAclRule(pkg);
    const exceptions = ACL_SUITE_EXCEPTIONS[name] ?? {};
    const user = `x-checks-${slug(name)}-${randomBytes(4).toString('hex')}`;
    const password = randomBytes(16).toString('hex');
    const extra = exceptions.testOnlyCommands?.split(/\s+/).filter(Boolean) ?? [];
    await admin.sendCommand(['ACL', 'SETUSER', user, 'reset', 'on', `>${password}`, ...aclArgs(rule, TEST_PREFIX_PATTERN), ...extra]);
    const url = new URL(redisUrl());
    url.username = user;
    url.password = password;
    const output = join(tmp, `${slug(name)}.json`);
    try {
      const jest = require.resolve('jest/bin/jest', { paths: [pkg.dir] });
      const result = await run(process.execPath, [jest, '--ci', '--json', `--outputFile=${output}`], {
        cwd: pkg.dir,
        env: { ...process.env, REDIS_URL: url.toString(), REDIS_ADMIN_URL: redisUrl(), X_TARGETS: 'standalone' },
        timeoutMs: 240_000,
      });
      const denials = await aclDenials(user);
      let report: { numTotalTests: number; testResults: Array<{ name: string; status: string; message: string; assertionResults: AssertionResult[] }> };
      try {
        report = JSON.parse(readFileSync(output, 'utf8'));
      } catch {
        throw new Error(describeRun(`jest in ${pkg.rel} as ACL user ${user}`, result));
      }
      const assertions = report.testResults.flatMap((r) => r.assertionResults);
      const brokenFiles = report.testResults.filter((r) => r.status === 'failed' && r.assertionResults.every((a) => a.status !== 'failed'));
      const needsAdmin = exceptions.needsAdmin ?? {};
      const failed = assertions.filter((a) => a.status === 'failed');
      const unexpected = failed.filter((a) => !(a.fullName in needsAdmin));
      const notNoperm = failed.filter((a) => a.fullName in needsAdmin && !a.failureMessages.join('\n').includes('NOPERM'));
      const stale = Object.keys(needsAdmin).filter((t) => !failed.some((a) => a.fullName === t));
      const summary =
        `${name}: ${assertions.length} tests as ACL user (standalone), ${assertions.filter((a) => a.status === 'passed').length} passed, ` +
        `${failed.length} failed (${failed.length - unexpected.length} expected: need admin rights)` +
        `${extra.length ? `; test-only commands granted on top of the rule: ${extra.join(' ')}` : ''}` +
        `${denials.length ? `; ACL denials: ${denials.join(', ')}` : '; no ACL denial'}\n`;
      process.stdout.write(summary);
      const problems = [
        ...brokenFiles.map((r) => `test file failed to run: ${r.name}\n${r.message.slice(0, 2_000)}`),
        ...unexpected.map((a) => `failed as ACL user: ${a.fullName}\n${a.failureMessages.join('\n').slice(0, 2_000)}`),
        ...notNoperm.map((a) => `listed as needing admin but failed for another reason: ${a.fullName}\n${a.failureMessages.join('\n').slice(0, 2_000)}`),
        ...stale.map((t) => `listed in ACL_SUITE_EXCEPTIONS (checks/src/acl.ts) as needing admin, but it did not fail: ${t}`),
      ];
      if (report.numTotalTests === 0) problems.push('the suite ran no test');
      if (problems.length > 0) {
        throw new Error(
          `${pkg.rel} under its ACL rule (${pkg.rel}/acl.txt, {prefix} → ${TEST_PREFIX_PATTERN}):\n` +
            `${problems.join('\n\n')}\n\nACL denials of ${user}: ${
              denials.length ? denials.join(', ') : 'none (so the rule refused nothing: look for a timing or load problem instead)'
            }`,
        );
      }
    } finally {
      await admin.sendCommand(['ACL', 'DELUSER', user]);
    }
  });
});
