/**
 * Many `remote invoke` runs of one host at once through the SSH connection-reuse master, each output
 * and exit code checked byte for byte: the load test of tests/ssh_reuse_test.ts and bench/reuse_stress.ts.
 */
import { runRemote } from "../run_remote.ts";

/** What a batch of reused runs got wrong. */
export interface ReuseLoadResult {
  runs: number;
  /** runs whose exit code was not the command's */
  wrongExits: number;
  /** bytes of expected stdout and stderr that did not arrive (or arrived different) */
  lostBytes: number;
  /** how many wrong runs ended with each exit code */
  wrongCodes: Record<number, number>;
  /** the first few failures, for the test's message */
  samples: string[];
}

/** The command of run `i`: a few KB of numbered lines on stdout, one line on stderr, exit code i mod 7. */
export function loadCommand(i: number): { command: string; stdout: string; stderr: string; code: number } {
  const lines = 100 + (i * 37) % 400;
  const stdout = Array.from({ length: lines }, (_, n) => `${i}:${n + 1}\n`).join("");
  return {
    command: `i=1; while [ $i -le ${lines} ]; do echo ${i}:$i; i=$((i+1)); done; echo err-${i} >&2; exit ${i % 7}`,
    stdout,
    stderr: `err-${i}\n`,
    code: i % 7,
  };
}

/**
 * Runs `count` invokes of `args` (target and options, without the command), `parallel` at a time,
 * with `env`; returns what went wrong.
 */
export async function reusedRuns(
  args: string[],
  env: Record<string, string>,
  count: number,
  parallel: number,
): Promise<ReuseLoadResult> {
  const result: ReuseLoadResult = { runs: 0, wrongExits: 0, lostBytes: 0, wrongCodes: {}, samples: [] };
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const want = loadCommand(i);
      const r = await runRemote(["invoke", ...args, "--", want.command], { env, timeoutMs: 120_000 });
      result.runs++;
      // the host's shell startup files may print to stderr first (seen: pyenv's rehash): only the end is the command's
      const lost = missing(want.stdout, r.stdout) + (r.stderr.endsWith(want.stderr) ? 0 : want.stderr.length);
      if (r.code !== want.code) {
        result.wrongExits++;
        result.wrongCodes[r.code] = (result.wrongCodes[r.code] ?? 0) + 1;
      }
      result.lostBytes += lost;
      if ((r.code !== want.code || lost > 0) && result.samples.length < 5) {
        result.samples.push(`run ${i}: exit ${r.code} (want ${want.code}), ${lost} bytes lost, stderr ${r.stderr}`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return result;
}

/** Bytes of `want` not matched by `got` (all of them when `got` differs other than by a missing tail). */
function missing(want: string, got: string): number {
  if (got === want) return 0;
  return want.startsWith(got) ? want.length - got.length : want.length;
}
