/**
 * Host key checking end to end against a real sshd: unknown, accepted, asked, changed, revoked and
 * hashed known_hosts entries, with the messages and files a user sees.
 */
import { deepStrictEqual as assertEquals, match, ok as assert, rejects } from "node:assert/strict";
import { run } from "./harness/process.ts";
import { type IsolatedHome, isolatedHome, readText, ScriptedPrompter, sshContext } from "./harness/ssh_context.ts";
import { type SshdServer, startSshd } from "./harness/sshd.ts";
import { open } from "../transports/ssh/mod.ts";
import { type Prompter, RemoteError } from "../plugins/mod.ts";
import { escapeRegExp, runRemote, type TempHome, tempHome } from "./run_remote.ts";

async function echo(
  server: SshdServer,
  home: IsolatedHome,
  options: { parameters?: Record<string, unknown>; prompt?: Prompter } = {},
) {
  const ctx = sshContext({ host: server.host, port: server.port, user: server.user }, home, {
    KeyFilePath: [server.userKey],
    ...options.parameters,
  }, { prompt: options.prompt });
  await using ch = await open(ctx, { kind: "exec", command: "echo ok" });
  await ch.stdin.close();
  assertEquals(await readText(ch.stdout), "ok\n");
  return ctx.notices;
}

function hostKeyError(pattern: RegExp, hint?: RegExp) {
  return (err: unknown) => {
    assert(err instanceof RemoteError, `not a RemoteError: ${err}`);
    assertEquals(err.exitCode, 246, err.message);
    match(err.message, pattern);
    if (hint) match(err.hint ?? "", hint);
    return true;
  };
}

async function fingerprint(publicLine: string): Promise<string> {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, publicLine + "\n");
    return (await run("ssh-keygen", ["-l", "-E", "sha256", "-f", file])).split(" ")[1];
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("open() refuses an unknown host key without a terminal and names the command to accept it", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  const fp = await fingerprint(sshd.hostKeys[0].publicLine);
  await rejects(
    echo(sshd, home),
    hostKeyError(
      new RegExp(`host key of \\[127\\.0\\.0\\.1\\]:${sshd.port} is not known \\(ED25519 ${escapeRegExp(fp)}\\)`),
      new RegExp(
        `ssh-keyscan -p ${sshd.port} -t ed25519 127\\.0\\.0\\.1 >> ${home.knownHosts}.*StrictHostKeyChecking=accept-new`,
      ),
    ),
  );
  await rejects(Deno.stat(home.knownHosts), Deno.errors.NotFound);
});

Deno.test("open() with StrictHostKeyChecking=accept-new records the key, and the next connection trusts it", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  const notices = await echo(sshd, home, { parameters: { Options: { StrictHostKeyChecking: "accept-new" } } });
  assertEquals(notices, [
    `warning: permanently added '[127.0.0.1]:${sshd.port}' (ED25519) to the list of known hosts`,
  ]);
  const recorded = await Deno.readTextFile(home.knownHosts);
  assertEquals(recorded, sshd.knownHostsLine().split("\n")[0] + "\n");
  // ssh itself accepts what was recorded
  await run("ssh-keygen", ["-F", `[127.0.0.1]:${sshd.port}`, "-f", home.knownHosts]);
  assertEquals(await echo(sshd, home), []);
});

Deno.test("open() asks about an unknown key on a terminal like ssh, and records it after yes", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  const fp = await fingerprint(sshd.hostKeys[0].publicLine);
  const prompt = new ScriptedPrompter(true, ["maybe", "yes"]);
  const notices = await echo(sshd, home, { prompt });
  assertEquals(prompt.questions.map((q) => q.question), [
    `The authenticity of host '[127.0.0.1]:${sshd.port} ([127.0.0.1]:${sshd.port})' can't be established.\n` +
    `ED25519 key fingerprint is ${fp}.\n` +
    "This key is not known by any other names.\n" +
    "Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
    "Please type 'yes', 'no' or the fingerprint: ",
  ]);
  assertEquals(notices.length, 1);
  assertEquals(await echo(sshd, home), []);
});

Deno.test("open() refuses a changed host key loudly, naming the known_hosts file and line", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  const other = `${home.dir}/other`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
  const otherKey = (await Deno.readTextFile(`${other}.pub`)).split(" ").slice(0, 2).join(" ");
  await Deno.writeTextFile(home.knownHosts, `# first\nexample.org ${otherKey}\n[127.0.0.1]:${sshd.port} ${otherKey}\n`);
  const ctx = sshContext({ host: sshd.host, port: sshd.port, user: sshd.user }, home, {
    KeyFilePath: [sshd.userKey],
    Options: { StrictHostKeyChecking: "no" },
  });
  await rejects(
    open(ctx, { kind: "exec", command: "true" }),
    hostKeyError(
      new RegExp(`HOST KEY OF \\[127\\.0\\.0\\.1\\]:${sshd.port} HAS CHANGED: .*${home.knownHosts}:3`),
      /ssh-keygen -R/,
    ),
  );
  assert(ctx.notices.some((n) => n.includes("REMOTE HOST IDENTIFICATION HAS CHANGED")));
});

Deno.test("open() refuses a host key marked @revoked", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  const [ed] = sshd.knownHostsLine().split("\n");
  await Deno.writeTextFile(home.knownHosts, `${ed}\n@revoked * ${ed.split(" ").slice(1).join(" ")}\n`);
  await rejects(echo(sshd, home), hostKeyError(new RegExp(`is revoked in ${home.knownHosts}:2`)));
});

Deno.test("open() accepts a hashed known_hosts entry and, with only an RSA key known, uses RSA", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  const rsa = sshd.knownHostsLine().split("\n")[1];
  assert(rsa.includes(" ssh-rsa "));
  await Deno.writeTextFile(home.knownHosts, rsa + "\n");
  await run("ssh-keygen", ["-q", "-H", "-f", home.knownHosts]);
  assert((await Deno.readTextFile(home.knownHosts)).startsWith("|1|"));
  assertEquals(await echo(sshd, home), []);
});

Deno.test("open() writes hashed entries when HashKnownHosts is yes", async () => {
  await using home = await isolatedHome();
  await using sshd = await startSshd();
  await echo(sshd, home, { parameters: { Options: { StrictHostKeyChecking: "accept-new", HashKnownHosts: "yes" } } });
  const recorded = await Deno.readTextFile(home.knownHosts);
  match(recorded, /^\|1\|[^ ]+ ssh-ed25519 /);
  // ssh-keygen finds the hashed entry by name
  await run("ssh-keygen", ["-F", `[127.0.0.1]:${sshd.port}`, "-f", home.knownHosts]);
});

/**
 * An ssh_config that names the harness sshd `aliased` (on its own port, never 22), with `extra` lines, and the
 * known_hosts file it uses; `ssh` and `remote` read the same one.
 */
async function aliasedHost(sshd: SshdServer, home: TempHome, extra: string[]) {
  const knownHosts = `${home.dir}/known_hosts`;
  const config = `${home.dir}/ssh_config`;
  await Deno.writeTextFile(
    config,
    [
      "Host aliased",
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.userKey}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${knownHosts}`,
      "  GlobalKnownHostsFile none",
      ...extra.map((l) => `  ${l}`),
      "",
    ].join("\n"),
  );
  return {
    config,
    knownHosts,
    /** `ssh -F config aliased true` without a terminal: its exit code and stderr */
    async ssh(...options: string[]): Promise<{ code: number; stderr: string }> {
      const out = await new Deno.Command("ssh", {
        args: ["-F", config, "-o", "BatchMode=yes", ...options, "aliased", "true"],
        env: { HOME: home.dir },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    },
    remote: () => runRemote(["invoke", "-F", config, "aliased", "--", "echo ok"], { env: home.env }),
  };
}

/** `type base64` of a fresh ed25519 key, which no server here holds. */
async function strangerKey(dir: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/stranger`]);
  return (await Deno.readTextFile(`${dir}/stranger.pub`)).split(" ").slice(0, 2).join(" ");
}

for (const strict of ["accept-new", "ask"]) {
  Deno.test(`remote with StrictHostKeyChecking ${strict} refuses a key that differs from the one under a HostKeyAlias on another port, as ssh does`, async () => {
    await using sshd = await startSshd();
    await using home = await tempHome();
    const host = await aliasedHost(sshd, home, ["HostKeyAlias tunnel-db", `StrictHostKeyChecking ${strict}`]);
    const recorded = `tunnel-db ${await strangerKey(home.dir)}\n`;
    await Deno.writeTextFile(host.knownHosts, recorded);
    // ssh looks the key up under the bare alias, whatever the port (ssh_config(5) HostKeyAlias)
    const ssh = await host.ssh();
    assertEquals(ssh.code, 255, ssh.stderr);
    match(ssh.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
    const r = await host.remote();
    assertEquals(r.code, 246, r.stderr);
    assertEquals(r.stdout, "");
    match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
    match(
      r.stderr,
      new RegExp(
        `remote: HOST KEY OF tunnel-db HAS CHANGED: it differs from the key in ${escapeRegExp(host.knownHosts)}:1`,
      ),
    );
    match(r.stderr, /hint: .*ssh-keygen -R 'tunnel-db'/);
    assertEquals(await Deno.readTextFile(host.knownHosts), recorded, "nothing was added");
  });
}

Deno.test("remote records a new key under the bare HostKeyAlias, where ssh finds it on the next connection", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const host = await aliasedHost(sshd, home, ["HostKeyAlias tunnel-db", "StrictHostKeyChecking accept-new"]);
  const first = await host.remote();
  assertEquals([first.code, first.stdout], [0, "ok\n"], first.stderr);
  match(first.stderr, /permanently added 'tunnel-db' \(ED25519\)/);
  const [ed] = sshd.knownHostsLine().split("\n");
  assertEquals(await Deno.readTextFile(host.knownHosts), `tunnel-db ${ed.split(" ").slice(1).join(" ")}\n`);
  // ssh, told to accept only known keys, takes what remote recorded
  const ssh = await host.ssh("-o", "StrictHostKeyChecking=yes");
  assertEquals(ssh.code, 0, ssh.stderr);
  const again = await host.remote();
  assertEquals([again.code, again.stdout, again.stderr], [0, "ok\n", ""]);
});

Deno.test("remote, like ssh, trusts on another port the same key recorded for the bare host name", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  const host = await aliasedHost(sshd, home, ["StrictHostKeyChecking yes"]);
  const [ed] = sshd.knownHostsLine().split("\n");
  await Deno.writeTextFile(host.knownHosts, `127.0.0.1 ${ed.split(" ").slice(1).join(" ")}\n`);
  const ssh = await host.ssh();
  assertEquals(ssh.code, 0, ssh.stderr);
  const r = await host.remote();
  assertEquals([r.code, r.stdout, r.stderr], [0, "ok\n", ""]);
});
