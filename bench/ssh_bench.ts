/**
 * Compares the ssh transport with OpenSSH's `ssh` against the same throwaway sshd on loopback:
 * time to first byte of `echo hi` and throughput of 200 MB from `head -c`. Prints medians; asserts
 * nothing (speed belongs here, not in tests).
 *
 * Run: deno run --allow-all bench/ssh_bench.ts [runs]
 *
 * @module
 */
import { isolatedHome, sshContext } from "../tests/harness/ssh_context.ts";
import { startSshd } from "../tests/harness/sshd.ts";
import { open } from "../transports/ssh/mod.ts";

const runs = Number(Deno.args[0] ?? 5);
const BYTES = 200_000_000;
await using home = await isolatedHome();
await using sshd = await startSshd();
await Deno.writeTextFile(home.knownHosts, sshd.knownHostsLine() + "\n");
const sshArgs = [
  "-F",
  "none",
  "-i",
  sshd.userKey,
  "-o",
  `UserKnownHostsFile=${home.knownHosts}`,
  "-o",
  "BatchMode=yes",
  "-p",
  String(sshd.port),
  `${sshd.user}@127.0.0.1`,
];

async function ours(command: string): Promise<{ firstByteMs: number; totalMs: number; bytes: number }> {
  const t0 = performance.now();
  const ctx = sshContext({ host: sshd.host, port: sshd.port, user: sshd.user }, home, { KeyFilePath: [sshd.userKey] });
  await using ch = await open(ctx, { kind: "exec", command });
  await ch.stdin.close();
  let first = 0;
  let bytes = 0;
  for await (const c of ch.stdout) {
    if (!first) first = performance.now() - t0;
    bytes += c.length;
  }
  await ch.exit;
  return { firstByteMs: first, totalMs: performance.now() - t0, bytes };
}

async function openssh(command: string, extra: string[] = []) {
  const t0 = performance.now();
  const child = new Deno.Command("ssh", { args: [...extra, ...sshArgs, command], stdout: "piped", stderr: "null" })
    .spawn();
  let first = 0;
  let bytes = 0;
  for await (const c of child.stdout) {
    if (!first) first = performance.now() - t0;
    bytes += c.length;
  }
  await child.status;
  return { firstByteMs: first, totalMs: performance.now() - t0, bytes };
}

const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Record<string, { ttfb: number[]; mbps: number[] }> = {
  "remote (ssh2, in-process)": { ttfb: [], mbps: [] },
  "ssh (OpenSSH defaults)": { ttfb: [], mbps: [] },
  "ssh -o KexAlgorithms=curve25519-sha256": { ttfb: [], mbps: [] },
};
await ours("true"); // warm the JIT and module graph once, as a long-running CLI would not need
for (let i = 0; i < runs; i++) {
  results["remote (ssh2, in-process)"].ttfb.push((await ours("echo hi")).firstByteMs);
  results["ssh (OpenSSH defaults)"].ttfb.push((await openssh("echo hi")).firstByteMs);
  results["ssh -o KexAlgorithms=curve25519-sha256"].ttfb.push(
    (await openssh("echo hi", ["-o", "KexAlgorithms=curve25519-sha256"])).firstByteMs,
  );
  const a = await ours(`head -c ${BYTES} /dev/zero`);
  results["remote (ssh2, in-process)"].mbps.push(a.bytes / 1e6 / (a.totalMs / 1000));
  const b = await openssh(`head -c ${BYTES} /dev/zero`);
  results["ssh (OpenSSH defaults)"].mbps.push(b.bytes / 1e6 / (b.totalMs / 1000));
}
for (const [name, r] of Object.entries(results)) {
  const mbps = r.mbps.length ? `${median(r.mbps).toFixed(0)} MB/s` : "-";
  console.log(`${name.padEnd(42)} ttfb ${median(r.ttfb).toFixed(0).padStart(4)} ms   200 MB ${mbps}`);
}
