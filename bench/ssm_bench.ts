/**
 * Throughput of the ssm transport through tests/ssm_emulator.ts: shell output (`blob N`) in MB/s.
 *
 * @module
 */
import { open } from "../transports/ssm/mod.ts";
import {
  emulatorContext,
  OutputReader,
  startSsmEmulator,
  type,
  useEmulatorCredentials,
} from "../tests/ssm_emulator.ts";

/** Measures MB/s of shell output through the emulator (agent → client, 1024-byte payloads, acked). */
export async function benchSsm(): Promise<{ name: string; value: number; unit: string }[]> {
  useEmulatorCredentials();
  const size = 4 * 1024 * 1024;
  await using emu = await startSsmEmulator();
  await using ch = await open(emulatorContext(emu), { kind: "shell", pty: { term: "xterm", columns: 80, rows: 24 } });
  const out = new OutputReader(ch.stdout);
  await out.waitFor("$ ");
  const start = performance.now();
  await type(ch, `blob ${size}\r`);
  await out.waitFor(`blob ${size}\r\n`);
  await out.waitFor("$ ", 120_000);
  const seconds = (performance.now() - start) / 1000;
  await type(ch, "exit\r");
  await ch.exit;
  await out.done;
  return [{ name: "ssm emulator shell output", value: size / 1024 / 1024 / seconds, unit: "MB/s" }];
}

if (import.meta.main) console.log(await benchSsm());
