// Cross-checked against the real OpenSSH tools: ssh-keygen makes the keys and certificates,
// hashes files (-H) and looks hosts up (-F) in files this module writes.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parsePublicKeyLine } from "./fingerprint.ts";
import { appendKnownHost, certificateSigningKey, checkHostKey, hostKeyName, knownHostsName } from "./known_hosts.ts";

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("ssh-keygen", { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
}

interface Key {
  type: string;
  key: Uint8Array;
  /** "type base64" as in a .pub file */
  text: string;
}

async function makeKey(dir: string, name: string, args: string[]): Promise<Key> {
  const r = await run(["-q", ...args, "-N", "", "-C", "", "-f", `${dir}/${name}`]);
  assertEquals(r.code, 0, r.out);
  const line = (await Deno.readTextFile(`${dir}/${name}.pub`)).trim();
  const p = parsePublicKeyLine(line);
  return { type: p.type, key: p.key, text: line.split(" ").slice(0, 2).join(" ") };
}

/** Runs `fn` with a fresh temp dir holding two ed25519 keys and an ecdsa key. */
async function withKeys(
  fn: (dir: string, keys: { a: Key; b: Key; e: Key }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "known_hosts_test_" });
  try {
    const a = await makeKey(dir, "a", ["-t", "ed25519"]);
    const b = await makeKey(dir, "b", ["-t", "ed25519"]);
    const e = await makeKey(dir, "e", ["-t", "ecdsa", "-b", "256"]);
    await fn(dir, { a, b, e });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `ssh-keygen -F name -f file`: the line number it reports, or undefined when not found. */
async function sshKeygenFind(file: string, name: string): Promise<number | undefined> {
  const r = await run(["-F", name, "-f", file]);
  if (r.code !== 0) return undefined;
  const m = /# Host .* found: line (\d+)/.exec(r.out);
  assert(m, r.out);
  return Number(m[1]);
}

Deno.test("knownHostsName() uses [host]:port except on port 22", () => {
  assertEquals(knownHostsName("db1", 22), "db1");
  assertEquals(knownHostsName("DB1.Example.com", 2222), "[db1.example.com]:2222");
  assertEquals(knownHostsName("::1", 2222), "[::1]:2222");
});

Deno.test("checkHostKey() reports unknown for a missing or empty file", async () => {
  await withKeys(async (dir, { a }) => {
    await Deno.writeTextFile(`${dir}/empty`, "");
    const r = await checkHostKey({
      host: "db1",
      port: 22,
      keyType: a.type,
      key: a.key,
      files: [`${dir}/missing`, `${dir}/empty`],
    });
    assertEquals(r, { kind: "unknown" });
  });
});

for (const hash of [false, true]) {
  for (const port of [22, 2222]) {
    const form = hash ? "hashed" : "plain";
    Deno.test(`appendKnownHost() writes a ${form} line for port ${port} that ssh-keygen -F finds`, async () => {
      await withKeys(async (dir, { a, b }) => {
        const file = `${dir}/sub/.ssh/known_hosts`;
        await appendKnownHost({ file, host: "other", port, keyType: b.type, key: b.key, hash });
        await appendKnownHost({ file, host: "DB1.example.com", port, keyType: a.type, key: a.key, hash });
        const name = knownHostsName("db1.example.com", port);
        assertEquals(await sshKeygenFind(file, name), 2);
        const r = await checkHostKey({ host: "db1.example.com", port, keyType: a.type, key: a.key, files: [file] });
        assertEquals(r, { kind: "known", file, line: 2 });
        // the other port is another host name to ssh-keygen; ssh itself also accepts, on a port other than 22,
        // the same key recorded for the bare host (sshconnect.c: "checking without port identifier")
        const otherPort = port === 22 ? 2222 : 22;
        assertEquals(await sshKeygenFind(file, knownHostsName("db1.example.com", otherPort)), undefined);
        const r2 = await checkHostKey({
          host: "db1.example.com",
          port: otherPort,
          keyType: a.type,
          key: a.key,
          files: [file],
        });
        assertEquals(r2.kind, otherPort === 22 ? "unknown" : "known");
        const text = await Deno.readTextFile(file);
        assertEquals(text.includes("db1"), !hash);
        assertEquals(text.split("\n").filter((l) => l.startsWith("|1|")).length, hash ? 2 : 0);
      });
    });
  }
}

Deno.test("appendKnownHost() creates the file 0600 and its directory 0700", async () => {
  await withKeys(async (dir, { a }) => {
    const file = `${dir}/new/.ssh/known_hosts`;
    await appendKnownHost({ file, host: "h", port: 22, keyType: a.type, key: a.key, hash: false });
    assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(`${dir}/new/.ssh`)).mode! & 0o777, 0o700);
    assertEquals(await Deno.readTextFile(file), `h ${a.text}\n`);
  });
});

Deno.test("appendKnownHost() starts a new line when the file lacks a final newline", async () => {
  await withKeys(async (dir, { a, b }) => {
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(file, `x ${b.text}`);
    await appendKnownHost({ file, host: "h", port: 22, keyType: a.type, key: a.key, hash: false });
    assertEquals(await Deno.readTextFile(file), `x ${b.text}\nh ${a.text}\n`);
  });
});

Deno.test("checkHostKey() finds entries in a file hashed by ssh-keygen -H, comma lists included", async () => {
  await withKeys(async (dir, { a, b }) => {
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(file, `# mine\nfirst,db1,10.0.0.5 ${b.text}\n[db1]:2200,second ${a.text}\n`);
    const h = await run(["-H", "-f", file]);
    assertEquals(h.code, 0, h.out);
    const text = await Deno.readTextFile(file);
    assert(!text.includes("db1"), text);
    for (
      const [host, port, key] of [["db1", 22, b], ["10.0.0.5", 22, b], ["db1", 2200, a], ["second", 22, a]] as const
    ) {
      const name = knownHostsName(host, port);
      const line = await sshKeygenFind(file, name);
      assert(line !== undefined, name);
      const r = await checkHostKey({ host, port, keyType: key.type, key: key.key, files: [file] });
      assertEquals(r, { kind: "known", file, line });
    }
  });
});

Deno.test("checkHostKey() matches wildcards, negation and case like ssh-keygen -F", async () => {
  await withKeys(async (dir, { a }) => {
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(file, `*.Example.com,!bad.example.com,db? ${a.text}\n[*.lan]:22?? ${a.text}\n`);
    const cases: [string, number, number | undefined][] = [
      ["good.example.com", 22, 1],
      ["GOOD.EXAMPLE.COM", 22, 1],
      ["bad.example.com", 22, undefined],
      ["db1", 22, 1],
      ["db12", 22, undefined],
      ["x.lan", 2201, 2],
      ["x.lan", 22, undefined],
    ];
    for (const [host, port, line] of cases) {
      assertEquals(await sshKeygenFind(file, knownHostsName(host, port)), line, `ssh-keygen: ${host}:${port}`);
      const r = await checkHostKey({ host, port, keyType: a.type, key: a.key, files: [file] });
      assertEquals(r, line === undefined ? { kind: "unknown" } : { kind: "known", file, line }, `${host}:${port}`);
    }
  });
});

Deno.test("checkHostKey() reports a changed key of the same type with its line", async () => {
  await withKeys(async (dir, { a, b, e }) => {
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(file, `# comment\n\nother ${a.text}\ndb1 ${e.text}\ndb1 ${b.text}\n`);
    const r = await checkHostKey({ host: "db1", port: 22, keyType: a.type, key: a.key, files: [`${dir}/none`, file] });
    assertEquals(r, { kind: "changed", file, line: 5, knownType: "ssh-ed25519" });
  });
});

Deno.test("hostKeyName() is the bare HostKeyAlias whatever the port, as ssh looks it up", () => {
  assertEquals(hostKeyName("127.0.0.1", 2222, "Tunnel-DB"), "tunnel-db");
  assertEquals(hostKeyName("127.0.0.1", 22, "tunnel-db"), "tunnel-db");
  assertEquals(hostKeyName("127.0.0.1", 2222), "[127.0.0.1]:2222");
});

Deno.test("checkHostKey() with a HostKeyAlias on another port compares the key under the bare alias", async () => {
  await withKeys(async (dir, { a, b }) => {
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(
      file,
      `[tunnel]:2222 ${a.text}
tunnel ${b.text}
`,
    );
    const changed = await checkHostKey({
      host: "127.0.0.1",
      port: 2222,
      alias: "Tunnel",
      keyType: a.type,
      key: a.key,
      files: [file],
    });
    assertEquals(changed, { kind: "changed", file, line: 2, knownType: "ssh-ed25519" });
    const known = await checkHostKey({
      host: "127.0.0.1",
      port: 2222,
      alias: "tunnel",
      keyType: b.type,
      key: b.key,
      files: [file],
    });
    assertEquals(known, { kind: "known", file, line: 2 });
  });
});

Deno.test("checkHostKey() without an alias also accepts the same key under the bare host, and only that", async () => {
  await withKeys(async (dir, { a, b }) => {
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(
      file,
      `db1 ${a.text}
`,
    );
    // ssh: "checking without port identifier", "found matching key w/out port"
    assertEquals(await checkHostKey({ host: "db1", port: 2222, keyType: a.type, key: a.key, files: [file] }), {
      kind: "known",
      file,
      line: 1,
    });
    // a different key under the bare name is not a change for port 2222: the host is new there
    assertEquals(await checkHostKey({ host: "db1", port: 2222, keyType: b.type, key: b.key, files: [file] }), {
      kind: "unknown",
    });
    // with an alias there is no second look
    assertEquals(
      await checkHostKey({ host: "db1", port: 2222, alias: "x", keyType: a.type, key: a.key, files: [file] }),
      { kind: "unknown" },
    );
  });
});

Deno.test("appendKnownHost() records under the bare HostKeyAlias, which ssh-keygen -F finds", async () => {
  await withKeys(async (dir, { a }) => {
    const file = `${dir}/known_hosts`;
    await appendKnownHost({
      file,
      host: "127.0.0.1",
      port: 2222,
      alias: "Tunnel",
      keyType: a.type,
      key: a.key,
      hash: false,
    });
    assertEquals(await Deno.readTextFile(file), `tunnel ${a.text}\n`);
    assertEquals(await sshKeygenFind(file, "tunnel"), 1);
  });
});

Deno.test("checkHostKey() reports unknown, naming other key types, when only other types are known", async () => {
  await withKeys(async (dir, { a, e }) => {
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(file, `db1 ${e.text}\n`);
    const r = await checkHostKey({ host: "db1", port: 22, keyType: a.type, key: a.key, files: [file] });
    assertEquals(r, { kind: "unknown", otherTypes: ["ecdsa-sha2-nistp256"] });
  });
});

Deno.test("checkHostKey() refuses a @revoked key even when it is also known", async () => {
  await withKeys(async (dir, { a }) => {
    const user = `${dir}/known_hosts`;
    const global = `${dir}/global`;
    await Deno.writeTextFile(user, `db1 ${a.text}\n`);
    await Deno.writeTextFile(global, `# revoked everywhere\n@revoked * ${a.text}\n`);
    const r = await checkHostKey({ host: "db1", port: 22, keyType: a.type, key: a.key, files: [user, global] });
    assertEquals(r, { kind: "revoked", file: global, line: 2 });
  });
});

Deno.test("checkHostKey() recognises a certificate signed by a @cert-authority", async () => {
  await withKeys(async (dir, { a, b }) => {
    // b is the CA; sign a as the host key of db.example.com
    const s = await run(["-q", "-s", `${dir}/b`, "-I", "hostid", "-h", "-n", "db.example.com", `${dir}/a.pub`]);
    assertEquals(s.code, 0, s.out);
    const cert = parsePublicKeyLine(await Deno.readTextFile(`${dir}/a-cert.pub`));
    assertEquals(cert.type, "ssh-ed25519-cert-v01@openssh.com");
    assertEquals(certificateSigningKey(cert.key), b.key);
    const file = `${dir}/known_hosts`;
    await Deno.writeTextFile(file, `# CA\n@cert-authority *.example.com ${b.text}\n`);
    const r = await checkHostKey({
      host: "db.example.com",
      port: 22,
      keyType: cert.type,
      key: cert.key,
      files: [file],
    });
    assertEquals(r, { kind: "cert-authority", file, line: 2 });
    // the plain key is not vouched for by the CA line, but the caller learns the CA exists
    const plain = await checkHostKey({ host: "db.example.com", port: 22, keyType: a.type, key: a.key, files: [file] });
    assertEquals(plain, { kind: "unknown", certAuthority: { file, line: 2 } });
    // a revoked CA revokes its certificates
    await Deno.writeTextFile(file, `@cert-authority *.example.com ${b.text}\n@revoked * ${b.text}\n`);
    const revoked = await checkHostKey({
      host: "db.example.com",
      port: 22,
      keyType: cert.type,
      key: cert.key,
      files: [file],
    });
    assertEquals(revoked, { kind: "revoked", file, line: 2 });
  });
});

Deno.test("checkHostKey() skips malformed lines and still counts line numbers", async () => {
  await withKeys(async (dir, { a, e }) => {
    const file = `${dir}/known_hosts`;
    const [type, b64] = a.text.split(" ");
    const lines = [
      "garbage",
      `db1 ${type}`,
      `db1 ${type} not*base64`,
      `db1 ${e.text.split(" ")[0]} ${b64}`, // type says ecdsa, blob is ed25519
      `@bogus db1 ${a.text}`,
      `|1|bad|hash ${a.text}`,
      `db1 ${a.text} trailing comment`,
    ];
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const r = await checkHostKey({ host: "db1", port: 22, keyType: a.type, key: a.key, files: [file] });
    assertEquals(r, { kind: "known", file, line: 7 });
    // ssh-keygen -F lists line 3 too (it finds hosts, not keys); ssh's key check skips it, as here
    assertEquals(await sshKeygenFind(file, "db1"), 3);
  });
});
