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
import { escapeRegExp } from "./run_remote.ts";

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
    `The authenticity of host '[127.0.0.1]:${sshd.port}' can't be established.\n` +
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
