import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Prompter } from "../../plugins/mod.ts";
import { fingerprintSha256 } from "./fingerprint.ts";
import { verifyHostKey } from "./host_key_policy.ts";

/** An ssh-ed25519 public key blob: type string, then 32 bytes. */
function ed25519Blob(fill: number): Uint8Array {
  const type = new TextEncoder().encode("ssh-ed25519");
  const out = new Uint8Array(4 + type.length + 4 + 32);
  const view = new DataView(out.buffer);
  view.setUint32(0, type.length);
  out.set(type, 4);
  view.setUint32(4 + type.length, 32);
  out.fill(fill, 8 + type.length);
  return out;
}

/** Answers "no" and keeps the question. */
function decline(): Prompter & { questions: string[] } {
  const questions: string[] = [];
  return {
    interactive: true,
    questions,
    ask(question: string) {
      questions.push(question);
      return Promise.resolve("no");
    },
  };
}

Deno.test("verifyHostKey() lists at most 8 other names of the key, as ssh, and names no address through a jump host", async () => {
  const home = await Deno.makeTempDir();
  try {
    const key = ed25519Blob(7);
    const b64 = Buffer.from(key).toString("base64");
    const other = Buffer.from(ed25519Blob(9)).toString("base64");
    const file = `${home}/known_hosts`;
    const lines = [`unrelated ssh-ed25519 ${other}`];
    for (let i = 1; i <= 10; i++) lines.push(`name${i} ssh-ed25519 ${b64}`);
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const prompt = decline();
    await rejects(
      verifyHostKey({
        host: "db1",
        port: 2201,
        key,
        userKnownHostsFiles: [file],
        globalKnownHostsFiles: [],
        hashKnownHosts: false,
        prompt,
        notice: () => {},
        home,
      }),
      /you declined the key of \[db1\]:2201/,
    );
    const names = Array.from({ length: 8 }, (_, i) => `    ~/known_hosts:${i + 2}: name${i + 1}\n`).join("");
    assertEquals(
      prompt.questions[0],
      "The authenticity of host '[db1]:2201 (<no hostip for proxy command>)' can't be established.\n" +
        `ED25519 key fingerprint is ${fingerprintSha256(key)}.\n` +
        "This host key is known by the following other names/addresses:\n" +
        names +
        "    (2 additional names omitted)\n" +
        "Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
