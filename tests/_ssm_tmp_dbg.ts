import { open } from "../transports/ssm/mod.ts";
import { emulatorContext, OutputReader, startSsmEmulator, type, useEmulatorCredentials, blobBytes } from "./ssm_emulator.ts";
useEmulatorCredentials();
const t0 = performance.now();
const lap = (s: string) => console.error(s, Math.round(performance.now() - t0));
{
await using emu = await startSsmEmulator({});
await using ch = await open(emulatorContext(emu), { kind: "shell", pty: { term: "x", columns: 80, rows: 24 } });
const out = new OutputReader(ch.stdout);
await out.waitFor("$ ");
const size = 3000000;
const iv = setInterval(() => lap("bytes " + out.bytes().length + " frames " + emu.stats.framesOut + " in " + emu.stats.inputDuplicates), 250);
await type(ch, `blob ${size}\r`);
await out.waitFor(`blob ${size}\r\n`, 60_000); lap("echo");
const tail = new TextDecoder().decode(blobBytes(size).subarray(size - 64)) + "$ ";
await out.waitFor(tail, 60_000); lap("tail"); clearInterval(iv);
await type(ch, "exit\r"); lap("typed");
await ch.exit; lap("exit");
await out.done; lap("done");
}
lap("disposed");
