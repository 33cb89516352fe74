/**
 * `remote invoke --container-id web1` (and `docker://web1`) against `docker exec web1` on the same real engine
 * (tests/harness/docker_engine.ts: dockerd, or with `--engine podman` Podman's API service, which the docker CLI
 * speaks to as well), in turn so every contender meets the same machine load: time to the first byte of `echo hi`,
 * the CPU time (user + system, from /usr/bin/time) that run costs the client, and throughput of a large output
 * (`head -c N /dev/zero` into a pipe). Prints medians and ratios (remote ÷ docker: < 1 is faster for time, > 1 is
 * better for throughput). Asserts nothing. remote runs as `deno run main.ts` (as the tests do), so its times include
 * Deno's start; docker is a compiled Go binary.
 *
 * `--base OLD/main.ts` adds another checkout's main.ts (e.g. `git archive` of the unchanged tree), run in the same
 * turns, so a change is measured against its own baseline under the same load.
 *
 * Run: deno run -A bench/container_bench.ts [--runs N] [--mb MB] [--docker /usr/bin/docker] [--engine podman]
 *   [--base OLD/main.ts]
 *
 * @module
 */
import { startDockerEngine, startPodmanEngine } from "../tests/harness/docker_engine.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const arg = (name: string, fallback: string | undefined) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const RUNS = Number(arg("--runs", "7"));
const MB = Number(arg("--mb", "200"));
const DOCKER = arg("--docker", "/usr/bin/docker")!;
const ENGINE = arg("--engine", "docker");
const BASE = arg("--base", undefined);
const TIME = "/usr/bin/time";
const hasTime = await Deno.stat(TIME).then(() => true, () => false);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

type Command = [string, string[]];

/** Runs a command; returns ms to the first stdout byte, ms to the end, the bytes read and the CPU ms it used. */
async function timed([cmd, args]: Command, env: Record<string, string>, dir: string) {
  const cpuFile = `${dir}/cpu`;
  const [bin, argv] = hasTime ? [TIME, ["-f", "%U %S", "-o", cpuFile, cmd, ...args]] : [cmd, args];
  const start = performance.now();
  const child = new Deno.Command(bin, { args: argv, env, stdin: "null", stdout: "piped", stderr: "inherit" })
    .spawn();
  let first = 0;
  let bytes = 0;
  for await (const chunk of child.stdout) {
    if (first === 0) first = performance.now() - start;
    bytes += chunk.length;
  }
  const status = await child.status;
  const total = performance.now() - start;
  if (!status.success) throw new Error(`${cmd} ${args.join(" ")} failed with ${status.code}`);
  const cpu = hasTime
    ? (await Deno.readTextFile(cpuFile)).trim().split("\n").pop()!.split(" ").reduce((a, b) => a + Number(b), 0) * 1000
    : NaN;
  return { first, total, bytes, cpu };
}

await using engine = ENGINE === "podman" ? await startPodmanEngine() : await startDockerEngine();
console.log(`${ENGINE} engine and the busybox image ready in ${engine.startupMs} ms`);
await engine.createContainer("web1");
const env = { DOCKER_HOST: engine.host, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: engine.dir };
const remoteOf = (main: string, target: string[]) => (command: string): Command => [
  Deno.execPath(),
  ["run", "-A", "--quiet", main, "invoke", ...target, "--", command],
];
type Contender = [string, (command: string) => Command];
const contenders: Contender[] = [
  ["remote --container-id", remoteOf(MAIN, ["--container-id", "web1"])],
  ["remote docker://", remoteOf(MAIN, ["docker://web1"])],
  ...(BASE
    ? [
      ["base --container-id", remoteOf(BASE, ["--container-id", "web1"])] as Contender,
      ["base docker://", remoteOf(BASE, ["docker://web1"])] as Contender,
    ]
    : []),
  ["docker exec", (command: string): Command => [DOCKER, ["exec", "web1", "sh", "-c", command]]],
];

const firstByte = new Map<string, number[]>(contenders.map(([n]) => [n, []]));
const cpu = new Map<string, number[]>(contenders.map(([n]) => [n, []]));
const throughput = new Map<string, number[]>(contenders.map(([n]) => [n, []]));
const big = `head -c ${MB * 1024 * 1024} /dev/zero`;
// one warm-up each (Deno's module cache, the engine's first exec)
for (const [, make] of contenders) await timed(make("echo hi"), env, engine.dir);
for (let i = 0; i < RUNS; i++) {
  for (const [name, make] of contenders) {
    const t = await timed(make("echo hi"), env, engine.dir);
    firstByte.get(name)!.push(t.first);
    cpu.get(name)!.push(t.cpu);
  }
  for (const [name, make] of contenders) {
    const t = await timed(make(big), env, engine.dir);
    if (t.bytes !== MB * 1024 * 1024) throw new Error(`${name} delivered ${t.bytes} bytes`);
    throughput.get(name)!.push(t.bytes / 1024 / 1024 / (t.total / 1000));
  }
}
const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ").slice(0, 3).join(" ");
console.log(`runs: ${RUNS}, ${ENGINE} engine, docker CLI: ${DOCKER}, load average ${load}`);
const docker = {
  first: median(firstByte.get("docker exec")!),
  cpu: median(cpu.get("docker exec")!),
  tp: median(throughput.get("docker exec")!),
};
for (const [name] of contenders) {
  const fb = median(firstByte.get(name)!);
  const c = median(cpu.get(name)!);
  const tp = median(throughput.get(name)!);
  const ratios = name === "docker exec"
    ? ""
    : `  ratios: first byte ${(fb / docker.first).toFixed(2)} (goal <= 1.0), ${MB} MB ${
      (tp / docker.tp).toFixed(2)
    } (goal >= 1.0)`;
  console.log(
    `${name.padEnd(22)} first byte of echo hi ${fb.toFixed(0).padStart(4)} ms (CPU ${c.toFixed(0).padStart(3)} ms), ` +
      `${MB} MB output ${tp.toFixed(0).padStart(3)} MB/s${ratios}`,
  );
}
