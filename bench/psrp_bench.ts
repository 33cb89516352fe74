/**
 * `deno task bench` lines for PowerShell remoting: `remote invoke --configuration-name powershell` against
 * PowerShell's own client, `pwsh -c 'Invoke-Command -HostName … -ScriptBlock {…}'` (which runs OpenSSH's
 * `ssh -s … powershell`), in alternating turns against one throwaway sshd whose `powershell` subsystem is the
 * real pwsh in `-sshs` mode. Both make a fresh SSH connection each run (remote with `--no-reuse`).
 *
 * - time until a short script's result is printed (the whole command: PowerShell's own client includes
 *   starting pwsh, as a user running it from a shell pays), and the peak RSS of the largest process; and the same
 *   through remote's connection-reuse master (`-o ControlPersist=30s`, the master started before timing);
 * - 100,000 objects of output (`1..100000`), time to the last;
 * - packets and round trips of one short invoke, counted by a relay in front of the server
 *   (bench/_psrp_relay.ts): a round trip is a turn where the client sends after having heard the server.
 *
 * @module
 */
import type { BenchEnv, BenchRow } from "./copy_forward.ts";
import { startSshd } from "../tests/harness/sshd.ts";
import { findPwsh } from "../tests/psrp_pwsh.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const RELAY = new URL("./_psrp_relay.ts", import.meta.url).pathname;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The pwsh launcher's folder, for PATH (PowerShell's client runs `pwsh`). */
async function pwshOnPath(env: Record<string, string>): Promise<Record<string, string>> {
  for (const dir of [...(env.PATH ?? "").split(":"), `${Deno.env.get("HOME")}/.dotnet/tools`]) {
    try {
      if (dir && (await Deno.stat(`${dir}/pwsh`)).isFile) {
        return {
          ...env,
          PATH: `${env.PATH}:${dir}`,
          POWERSHELL_TELEMETRY_OPTOUT: "1",
          DOTNET_CLI_TELEMETRY_OPTOUT: "1",
        };
      }
    } catch { /* not here */ }
  }
  throw new Error("pwsh not found: dotnet tool install --global PowerShell --version 7.6.9");
}

/** Wall time in ms until the process ends, its stdout checked, and its peak RSS (largest process, MB). */
async function run(
  argv: string[],
  env: Record<string, string>,
  check: (stdout: string) => boolean,
): Promise<{ ms: number; rss: number }> {
  const t = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "maxrss %M", ...argv],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t;
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success || !check(stdout)) throw new Error(`${argv.join(" ")} failed: ${stderr} ${stdout.slice(0, 200)}`);
  return { ms, rss: Number(/maxrss (\d+)/.exec(stderr)?.[1] ?? 0) / 1024 };
}

/** Packets each way and client round trips in a relay log. */
function turns(log: string): { packets: number; trips: number } {
  let trips = 0;
  let heard = false;
  let packets = 0;
  for (const line of log.trim().split("\n")) {
    const [, who] = line.split(" ");
    packets++;
    if (who === "s") heard = true;
    else if (heard) {
      trips++;
      heard = false;
    }
  }
  return { packets, trips };
}

/** The PSRP rows; `runs` alternating turns each. */
export async function benchPsrp(e: BenchEnv, runs: number): Promise<BenchRow[]> {
  const pwsh = await findPwsh();
  const server = [pwsh.program === "dotnet" ? "/usr/bin/env dotnet" : pwsh.program, ...pwsh.prefix, "-sshs", "-NoLogo"];
  const log = `${e.home}/psrp-relay.log`;
  const deno = Deno.execPath();
  const subsystem = (relay: boolean) =>
    `Subsystem powershell ${relay ? `${deno} run --allow-all --quiet ${RELAY} ${log} ` : ""}${server.join(" ")}`;
  const env = await pwshOnPath(e.env);
  const rows: BenchRow[] = [];
  for (const relay of [false, true]) {
    await using sshd = await startSshd({ config: subsystem(relay) });
    const kh = `${e.home}/psrp_known_hosts`;
    await Deno.writeTextFile(kh, sshd.knownHostsLine() + "\n");
    const config = `${e.home}/psrp_ssh_config`;
    await Deno.writeTextFile(
      config,
      [
        "Host p01",
        "  HostName 127.0.0.1",
        `  Port ${sshd.port}`,
        `  User ${sshd.user}`,
        `  IdentityFile ${sshd.userKey}`,
        "  IdentitiesOnly yes",
        `  UserKnownHostsFile ${kh}`,
        "  BatchMode yes",
        "",
      ].join("\n"),
    );
    const remote = (script: string, reuse = false) => [
      deno,
      "run",
      "--allow-all",
      "--quiet",
      MAIN,
      "invoke",
      "p01",
      "-F",
      config,
      ...(reuse ? ["-o", "ControlPersist=30s"] : ["--no-reuse"]),
      "--configuration-name",
      "powershell",
      "--",
      script,
    ];
    const options = `@{UserKnownHostsFile='${kh}';IdentitiesOnly='yes';BatchMode='yes'}`;
    const theirs = (script: string) => [
      "pwsh",
      "-NoLogo",
      "-NoProfile",
      "-NonInteractive",
      "-c",
      `Invoke-Command -HostName 127.0.0.1 -Port ${sshd.port} -UserName ${sshd.user} -KeyFilePath ${sshd.userKey} ` +
      `-Options ${options} -ScriptBlock { ${script} }`,
    ];
    if (relay) {
      // one short invoke each, its packets counted
      const counts = [];
      for (const argv of [remote("1"), theirs("1")]) {
        await Deno.writeTextFile(log, "");
        await run(argv, env, (s) => s.trim() === "1");
        counts.push(turns(await Deno.readTextFile(log)));
      }
      rows.push({
        name: `(7c) PSRP round trips of a short invoke (${counts[0].packets} vs ${counts[1].packets} packets)`,
        remote: counts[0].trips,
        ssh: counts[1].trips,
        unit: "trips",
        goal: "≤ 1.0×",
      });
      continue;
    }
    const short = { a: [] as { ms: number; rss: number }[], b: [] as { ms: number; rss: number }[] };
    const bulk = { a: [] as number[], b: [] as number[] };
    const reused = [] as number[];
    const one = (s: string) => s.trim() === "1";
    const all = (s: string) => s.endsWith("\n100000\n") && s.split("\n").length === 100_001;
    await run(remote("1"), env, one); // warm both (page cache, sshd's first fork, .NET's first start)
    await run(theirs("1"), env, one);
    await run(remote("1", true), env, one); // starts the reuse master
    for (let i = 0; i < runs; i++) {
      short.a.push(await run(remote("1"), env, one));
      short.b.push(await run(theirs("1"), env, one));
      reused.push((await run(remote("1", true), env, one)).ms);
      bulk.a.push((await run(remote("1..100000"), env, all)).ms);
      bulk.b.push((await run(theirs("1..100000"), env, all)).ms);
    }
    rows.push(
      {
        name: "(7a) PowerShell `1` over SSH, time to result: invoke vs pwsh Invoke-Command -HostName",
        remote: median(short.a.map((x) => x.ms)),
        ssh: median(short.b.map((x) => x.ms)),
        unit: "ms",
        goal: "≤ 1.0×",
      },
      {
        name: "(7a) PowerShell `1` over SSH, peak RSS of the largest process",
        remote: median(short.a.map((x) => x.rss)),
        ssh: median(short.b.map((x) => x.rss)),
        unit: "MB",
        goal: "≤ 1.0×",
      },
      {
        name: "(7a) PowerShell `1`, invoke through the reuse master vs pwsh Invoke-Command -HostName",
        remote: median(reused),
        ssh: median(short.b.map((x) => x.ms)),
        unit: "ms",
        goal: "≤ 1.0×",
      },
      {
        name: "(7b) PowerShell 1..100000 over SSH, time to the last object",
        remote: median(bulk.a),
        ssh: median(bulk.b),
        unit: "ms",
        goal: "≤ 1.0×",
      },
    );
  }
  return rows;
}
