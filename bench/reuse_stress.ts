/**
 * The connection-reuse load run of issue 13: N `remote invoke` runs of one host, P at a time, through
 * the reuse master against a throwaway sshd; prints runs, wrong exit codes and lost bytes. Asserts
 * nothing (tests/ssh_reuse_test.ts runs a bounded version). Load the machine yourself for the loaded case.
 *
 * Run: deno run --allow-all bench/reuse_stress.ts [--runs 1000] [--parallel 50] [--max-sessions N]
 *
 * @module
 */
import { reusedRuns } from "../tests/harness/reuse_load.ts";
import { startSshd } from "../tests/harness/sshd.ts";
import { tempHome } from "../tests/run_remote.ts";

const arg = (name: string, fallback: number) => {
  const at = Deno.args.indexOf(name);
  return at >= 0 ? Number(Deno.args[at + 1]) : fallback;
};
const runs = arg("--runs", 1000);
const parallel = arg("--parallel", 50);
const maxSessions = arg("--max-sessions", 0);

await using sshd = await startSshd(maxSessions ? { config: `MaxSessions ${maxSessions}` } : {});
await using home = await tempHome();
const knownHosts = `${home.dir}/known_hosts`;
await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
const target = [
  `${sshd.user}@127.0.0.1`,
  "-p",
  String(sshd.port),
  "-i",
  sshd.userKey,
  "-o",
  `UserKnownHostsFile=${knownHosts}`,
  "-o",
  "ControlPersist=30s",
];
const started = performance.now();
const r = await reusedRuns(target, home.env, runs, parallel);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  `runs ${r.runs}, ${parallel} at a time: wrong exits ${r.wrongExits}, lost bytes ${r.lostBytes} (${seconds} s)`,
);
console.log(`wrong exit codes seen: ${JSON.stringify(r.wrongCodes)}`);
for (const s of r.samples) console.log(`  ${s.trim()}`);
const dir = `${home.env.XDG_RUNTIME_DIR}/remote`;
for (const e of Deno.readDirSync(dir)) await Deno.remove(`${dir}/${e.name}`).catch(() => {});
