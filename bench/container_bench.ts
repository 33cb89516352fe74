/**
 * `remote invoke docker://web1` against `docker exec web1` on the same real dockerd (tests/harness/docker_engine.ts),
 * alternating so both meet the same machine load: time to the first byte of `echo hi`, and throughput of a large
 * output (`head -c N /dev/zero`). Prints medians and ratios (remote ÷ docker: < 1 is faster for time, > 1 is better
 * for throughput). Asserts nothing. remote runs as `deno run main.ts` (as the tests do), so its time to first byte
 * includes Deno's start; docker is a compiled Go binary.
 *
 * Run: deno run -A bench/container_bench.ts [--runs N] [--mb MB] [--docker /usr/bin/docker]
 *
 * @module
 */
import { startDockerEngine } from "../tests/harness/docker_engine.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const RUNS = Number(arg("--runs", "7"));
const MB = Number(arg("--mb", "200"));
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

await using engine = await startDockerEngine();
console.log(`dockerd and the busybox image ready in ${engine.startupMs} ms`);
await engine.createContainer("web1");
const env = { DOCKER_HOST: engine.host, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: engine.dir };
const remote = (
  command: string,
): Command => [Deno.execPath(), ["run", "-A", "--quiet", MAIN, "invoke", "docker://web1", "--", command]];
const docker = (command: string): Command => [DOCKER, ["exec", "web1", "sh", "-c", command]];

const firstByte = { remote: [] as number[], docker: [] as number[] };
const throughput = { remote: [] as number[], docker: [] as number[] };
const big = `head -c ${MB * 1024 * 1024} /dev/zero`;
// one warm-up each (Deno's module cache, the engine's first exec)
await timed(remote("echo hi"), env);
await timed(docker("echo hi"), env);
for (let i = 0; i < RUNS; i++) {
  for (const [name, make] of [["remote", remote], ["docker", docker]] as const) {
    firstByte[name].push((await timed(make("echo hi"), env)).first);
    const t = await timed(make(big), env);
    if (t.bytes !== MB * 1024 * 1024) throw new Error(`${name} delivered ${t.bytes} bytes`);
    throughput[name].push(t.bytes / 1024 / 1024 / (t.total / 1000));
  }
}
const fb = { remote: median(firstByte.remote), docker: median(firstByte.docker) };
const tp = { remote: median(throughput.remote), docker: median(throughput.docker) };
console.log(`runs: ${RUNS}, docker CLI: ${DOCKER}`);
console.log(
  `first byte of echo hi: remote ${fb.remote.toFixed(0)} ms, docker exec ${fb.docker.toFixed(0)} ms, ratio ${
    (fb.remote / fb.docker).toFixed(2)
  } (goal <= 1.0)`,
);
console.log(
  `${MB} MB output: remote ${tp.remote.toFixed(0)} MB/s, docker exec ${tp.docker.toFixed(0)} MB/s, ratio ${
    (tp.remote / tp.docker).toFixed(2)
  } (goal >= 1.0)`,
);
