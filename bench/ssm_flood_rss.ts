/**
 * Peak resident memory of `remote enter --target …` (the real CLI, its own process) while the
 * emulated agent floods it with large out-of-order frames and remote's stdout goes to a pipe nobody
 * reads: the case of a hostile or broken peer and a stalled consumer. Prints the child's VmHWM once
 * the agent is stuck (resending what remote does not take) or everything was acknowledged.
 *
 * Run: deno run --allow-all bench/ssm_flood_rss.ts [MB] [frame KiB] [flood|blob]
 * (`blob`: the same bytes in order, in the agent's 1 KiB payloads: backpressure alone)
 *
 * @module
 */
import { startSsmEmulator, TEST_CREDENTIALS } from "../tests/ssm_emulator.ts";

const MB = 1024 * 1024;
const size = Number(Deno.args[0] ?? 128) * MB;
const frameBytes = Number(Deno.args[1] ?? 64) * 1024;
const frames = Math.ceil(size / frameBytes);
const command = Deno.args[2] ?? "flood";

await using emu = await startSsmEmulator({ floodFrameBytes: frameBytes, agentWindow: frames + 16 });
const home = await Deno.makeTempDir({ prefix: "remote-bench-" });
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "--quiet",
    new URL("../main.ts", import.meta.url).pathname,
    "enter",
    "--target",
    "i-0123456789abcdef0",
    "--endpoint-url",
    emu.endpoint,
    "--region",
    emu.region,
  ],
  env: {
    HOME: home,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_SHARED_CREDENTIALS_FILE: `${home}/none`,
    AWS_CONFIG_FILE: `${home}/none`,
  },
  stdin: "piped",
  stdout: "piped",
  stderr: "null",
}).spawn();
const writer = child.stdin.getWriter();
await writer.write(new TextEncoder().encode(`${command} ${size}\n`));

const hwm = async () => {
  const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
};
const deadline = Date.now() + 120_000;
while (Date.now() < deadline && emu.stats.outputBytesAcked < size && emu.stats.maxResendAttempts < 10) {
  await new Promise((r) => setTimeout(r, 200));
}
const peak = await hwm();
console.log(
  `${command} ${size / MB} MiB in ${command === "blob" ? 1 : frameBytes / 1024} KiB frames, stdout not read: peak RSS ${
    (peak / MB).toFixed(0)
  } MiB; ` +
    `acknowledged ${(emu.stats.outputBytesAcked / MB).toFixed(1)} MiB, buffered out of order ` +
    `${(emu.stats.floodEarlyAckedBytes / MB).toFixed(1)} MiB`,
);
child.kill("SIGKILL");
await child.status;
await child.stdout.cancel().catch(() => {});
await Deno.remove(home, { recursive: true });
