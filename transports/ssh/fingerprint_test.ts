import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { RemoteError } from "../../plugins/mod.ts";
import { fingerprintSha256, keyTypeOf, parsePublicKeyLine } from "./fingerprint.ts";

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

const KEYS: { args: string[]; type: string }[] = [
  { args: ["-t", "ed25519"], type: "ssh-ed25519" },
  { args: ["-t", "rsa", "-b", "2048"], type: "ssh-rsa" },
  { args: ["-t", "ecdsa", "-b", "256"], type: "ecdsa-sha2-nistp256" },
  { args: ["-t", "ecdsa", "-b", "384"], type: "ecdsa-sha2-nistp384" },
  { args: ["-t", "ecdsa", "-b", "521"], type: "ecdsa-sha2-nistp521" },
];

for (const k of KEYS) {
  Deno.test(`fingerprintSha256() equals ssh-keygen -lf for ${k.type}`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "fingerprint_test_" });
    try {
      await run("ssh-keygen", ["-q", ...k.args, "-N", "", "-C", "me@box two", "-f", `${dir}/k`]);
      const line = await Deno.readTextFile(`${dir}/k.pub`);
      const parsed = parsePublicKeyLine(line);
      assertEquals(parsed.type, k.type);
      assertEquals(parsed.comment, "me@box two");
      assertEquals(keyTypeOf(parsed.key), k.type);
      const want = (await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${dir}/k.pub`])).split(" ")[1];
      assertEquals(fingerprintSha256(parsed.key), want);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("parsePublicKeyLine() accepts a line without comment", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fingerprint_test_" });
  try {
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/k`]);
    const [type, b64] = (await Deno.readTextFile(`${dir}/k.pub`)).split(" ");
    const parsed = parsePublicKeyLine(`${type} ${b64}\n`);
    assertEquals(parsed.comment, undefined);
    assertEquals(Buffer.from(parsed.key).toString("base64"), b64);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parsePublicKeyLine() rejects bad base64, a type mismatch and a lone word", () => {
  const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 0])]);
  const cases: [string, string][] = [
    ["ssh-ed25519 AAA$AAA", "malformed public key line: bad base64 in the ssh-ed25519 key"],
    [`ssh-rsa ${blob.toString("base64")}`, "malformed public key line: says ssh-rsa but the key is ssh-ed25519"],
    ["ssh-ed25519", "malformed public key line: expected '<type> <base64> [comment]'"],
  ];
  for (const [line, message] of cases) {
    throws(() => parsePublicKeyLine(line), (e: unknown) => {
      assert(e instanceof RemoteError);
      assertEquals([e.code, e.message], ["keyFile", message]);
      assert(e.hint);
      return true;
    });
  }
});

Deno.test("keyTypeOf() rejects a blob too short to hold a type", () => {
  throws(() => keyTypeOf(new Uint8Array([0, 0, 0, 9, 0x61])), RemoteError);
  throws(() => keyTypeOf(new Uint8Array([])), RemoteError);
});
