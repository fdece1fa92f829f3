import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A child process running a worker script, to be killed at a point it names. */
export interface Worker {
  readonly child: ChildProcess;
  /** Resolves when the worker reaches `point(name)` (see `@x/testing/child`). */
  reached(name: string, timeoutMs?: number): Promise<void>;
  /** Every `report(value)` the worker made so far, parsed. */
  readonly reports: unknown[];
  /** SIGKILLs the worker and waits for it to be gone. */
  kill(): Promise<void>;
  /** Resolves with the exit code once the worker ends by itself. */
  exited(): Promise<number | null>;
}

/**
 * Runs `file` with node in a child process with the test run's Redis in its environment. With
 * `crashAt`, the worker stops at `point(crashAt)` so that the test can SIGKILL it right there.
 */
export function spawnWorker(file: string, options: { args?: string[]; env?: Record<string, string>; crashAt?: string } = {}): Worker {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.crashAt) env.X_CRASH_AT = options.crashAt;
  const child = spawn(process.execPath, [file, ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const points = new Set<string>();
  const waiting = new Map<string, Array<() => void>>();
  const reports: unknown[] = [];
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('@@point ')) {
      const name = line.slice(8);
      points.add(name);
      for (const resolve of waiting.get(name) ?? []) resolve();
      waiting.delete(name);
    } else if (line.startsWith('@@report ')) {
      reports.push(JSON.parse(line.slice(9)));
    }
  });
  return {
    child,
    reports,
    reached(name, timeoutMs = 30_000) {
      if (points.has(name)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker ${file} did not reach ${name} in ${timeoutMs} ms`)), timeoutMs);
        exit.then((code) => {
          if (!points.has(name)) {
            clearTimeout(timer);
            reject(new Error(`worker ${file} exited with ${code} before reaching ${name}`));
          }
        });
        const list = waiting.get(name) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
        waiting.set(name, list);
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exit;
    },
    exited: () => exit,
  };
}
