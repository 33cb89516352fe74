import { isolatedHome, sshContext } from "../tests/harness/ssh_context.ts";
import { startSshd } from "../tests/harness/sshd.ts";
import { open } from "../transports/ssh/mod.ts";
await using home = await isolatedHome();
await using sshd = await startSshd();
await Deno.writeTextFile(home.knownHosts, sshd.knownHostsLine() + "\n");
for (const n of [2e7]) {
  const t0 = performance.now();
  const ctx = sshContext({ host: sshd.host, port: sshd.port, user: sshd.user }, home, { KeyFilePath: [sshd.userKey] });
  await using ch = await open(ctx, { kind: "exec", command: `head -c ${n} /dev/zero` });
  if (Deno.env.get("CLOSE")) await ch.stdin.close();
  let bytes = 0; let chunks = 0;
  const t1 = performance.now();
  for await (const c of ch.stdout) { bytes += c.length; chunks++; if (chunks % 100 == 0) console.error(bytes); }
  console.log(n, bytes, chunks, performance.now() - t1, performance.now() - t0, await ch.exit);
}
