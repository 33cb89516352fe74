/**
 * A container on an SSH host: `remote invoke docker://web1 --via dockhost` against `docker -H ssh://dockhost exec
 * web1` (the docker CLI's ssh helper: OpenSSH's `ssh`, then `docker system dial-stdio` on the host) and against
 * `ssh dockhost docker exec web1`, on the harness's real sshd and dockerd (loopback: this machine is the SSH host).
 * Alternating, so all meet the same load: time to the first byte of `echo hi`, and throughput of `head -c N
 * /dev/zero`. Prints medians and ratios (remote ÷ other). Asserts nothing. remote runs as `deno run main.ts`, so its
 * times include Deno's start.
 *
 * OpenSSH's `ssh` reads the config of the passwd home, not $HOME, so the comparison's `ssh` is a wrapper in a temp
 * folder adding `-F` with this run's config; the engine's socket reaches `docker system dial-stdio` on the host as
 * DOCKER_HOST through SetEnv (sshd started with AcceptEnv DOCKER_HOST).
 *
 * Run: deno run -A bench/via_container_bench.ts [--runs N] [--mb MB] [--docker /usr/bin/docker]
 *
 * @module
 */
import { startDockerEngine } from "../tests/harness/docker_engine.ts";
import { startSshd } from "../tests/harness/sshd.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const RUNS = Number(arg("--runs", "7"));
const MB = Number(arg("--mb", "100"));
const DOCKER = arg("--docker", "/usr/bin/docker");

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

type Command = [string, string[]];

/** Runs a command; returns ms to the first stdout byte, ms to the end, and the bytes read. */
async function timed([cmd, args]: Command, env: Record<string, string>) {
  const start = performance.now();
  const child = new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "inherit" }).spawn();
  let first = 0;
  let bytes = 0;
  for await (const chunk of child.stdout) {
    if (first === 0) first = performance.now() - start;
    bytes += chunk.length;
  }
  const status = await child.status;
  if (!status.success) throw new Error(`${cmd} ${args.join(" ")} failed with ${status.code}`);
  return { first, total: performance.now() - start, bytes };
}

await using sshd = await startSshd({ config: "AcceptEnv DOCKER_HOST" });
await using engine = await startDockerEngine();
await engine.createContainer("web1");
const home = await Deno.makeTempDir({ prefix: "remote-via-bench-" });
try {
  await Deno.mkdir(`${home}/.ssh`, { mode: 0o700 });
  await Deno.mkdir(`${home}/bin`);
  await Deno.writeTextFile(`${home}/.ssh/known_hosts`, sshd.knownHostsLine() + "\n");
  await Deno.writeTextFile(
    `${home}/.ssh/config`,
    [
      "Host dockhost",
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.userKey}`,
      `  UserKnownHostsFile ${home}/.ssh/known_hosts`,
      `  SetEnv DOCKER_HOST=${engine.host}`,
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(`${home}/bin/ssh`, `#!/bin/sh\nexec /usr/bin/ssh -F ${home}/.ssh/config "$@"\n`, {
    mode: 0o755,
  });
  const env = {
    PATH: `${home}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    HOME: home,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    DOCKER_HOST: "unix:///nonexistent.sock",
    SSH_AUTH_SOCK: "",
  };
  const tools = {
    remote: (c: string): Command => [
      Deno.execPath(),
      [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "invoke",
        "docker://web1",
        "--via",
        "dockhost",
        "--docker-host",
        engine.host,
        "--",
        c,
      ],
    ],
    "docker -H ssh://": (c: string): Command => [DOCKER, ["-H", "ssh://dockhost", "exec", "web1", "sh", "-c", c]],
    "ssh docker exec": (
      c: string,
    ): Command => [`${home}/bin/ssh`, ["dockhost", DOCKER, "exec", "web1", "sh", "-c", `'${c}'`]],
  } as const;
  type Tool = keyof typeof tools;
  const names = Object.keys(tools) as Tool[];
  const firstByte = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Tool, number[]>;
  const throughput = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Tool, number[]>;
  const big = `head -c ${MB * 1024 * 1024} /dev/zero`;
  for (const n of names) await timed(tools[n]("echo hi"), env); // warm-up: caches, the engine's first exec
  for (let i = 0; i < RUNS; i++) {
    for (const n of names) {
      firstByte[n].push((await timed(tools[n]("echo hi"), env)).first);
      const t = await timed(tools[n](big), env);
      if (t.bytes !== MB * 1024 * 1024) throw new Error(`${n} delivered ${t.bytes} bytes`);
      throughput[n].push(t.bytes / 1024 / 1024 / (t.total / 1000));
    }
  }
  console.log(`runs: ${RUNS}, docker CLI: ${DOCKER}, load: ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  for (const n of names) {
    const fb = median(firstByte[n]);
    const tp = median(throughput[n]);
    const ratio = n === "remote"
      ? ""
      : ` (remote ÷ this: first byte ${(median(firstByte.remote) / fb).toFixed(2)}, throughput ${
        (median(throughput.remote) / tp).toFixed(2)
      })`;
    console.log(`${n}: first byte ${fb.toFixed(0)} ms, ${MB} MB at ${tp.toFixed(0)} MB/s${ratio}`);
  }
} finally {
  await Deno.remove(home, { recursive: true }).catch(() => {});
}
