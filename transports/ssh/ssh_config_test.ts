import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { userInfo } from "node:os";
import { RemoteError } from "../../plugins/mod.ts";
import { parseSshConfig, type ResolveOptions, resolveSshConfig, type SshHostConfig } from "./ssh_config.ts";

// ssh -G resolves with the passwd entry of the running user, so cross-checked cases use the same
const me = userInfo();
const HOME = me.homedir;
const USER = me.username;
const LOCAL_HOST = Deno.hostname();

/** Awaits `fn`, asserts it rejects with an instance of `cls`, and returns that error. */
async function assertRejects<E>(fn: () => Promise<unknown>, cls: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof cls, `rejected with ${e}`);
    return e;
  }
  throw new Error("did not reject");
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "ssh_config_test_" });
}

/** Runs the real `ssh -G` and returns its keyword → values table. */
async function sshG(configFile: string, host: string, options: Record<string, string> = {}): Promise<
  Map<string, string[]>
> {
  const args = ["-G", "-F", configFile];
  for (const [k, v] of Object.entries(options)) args.push("-o", `${k}=${v}`);
  args.push(host);
  const out = await new Deno.Command("ssh", { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ssh -G failed: ${new TextDecoder().decode(out.stderr)}`);
  const table = new Map<string, string[]>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const i = line.indexOf(" ");
    if (i < 0) continue;
    const k = line.slice(0, i);
    table.set(k, [...(table.get(k) ?? []), line.slice(i + 1)]);
  }
  return table;
}

/** The fields of our result that `ssh -G` prints, in its spelling. */
function asSshG(cfg: SshHostConfig, compareIdentities: boolean): Record<string, unknown> {
  const strict = { yes: "true", no: "false", ask: "ask", "accept-new": "accept-new" } as const;
  const out: Record<string, unknown> = {
    hostname: cfg.hostName,
    user: cfg.user ?? USER,
    port: String(cfg.port ?? 22),
    identitiesonly: cfg.identitiesOnly ? "yes" : "no",
    proxyjump: cfg.proxyJump,
    connecttimeout: cfg.connectTimeoutMs === undefined ? "none" : String(cfg.connectTimeoutMs / 1000),
    serveraliveinterval: String((cfg.serverAliveIntervalMs ?? 0) / 1000),
    serveralivecountmax: String(cfg.serverAliveCountMax),
    stricthostkeychecking: strict[cfg.strictHostKeyChecking ?? "ask"],
    userknownhostsfile: cfg.userKnownHostsFiles.join(" ") || "none",
    globalknownhostsfile: cfg.globalKnownHostsFiles.join(" ") || "none",
    hashknownhosts: cfg.hashKnownHosts ? "yes" : "no",
    sendenv: cfg.sendEnv,
  };
  if (compareIdentities) out.identityfile = cfg.identityFiles;
  return out;
}

function fromSshG(t: Map<string, string[]>, compareIdentities: boolean): Record<string, unknown> {
  const one = (k: string) => t.get(k)?.[0];
  const out: Record<string, unknown> = {
    hostname: one("hostname"),
    user: one("user"),
    port: one("port"),
    identitiesonly: one("identitiesonly"),
    proxyjump: one("proxyjump"),
    connecttimeout: one("connecttimeout"),
    serveraliveinterval: one("serveraliveinterval"),
    serveralivecountmax: one("serveralivecountmax"),
    stricthostkeychecking: one("stricthostkeychecking"),
    userknownhostsfile: one("userknownhostsfile"),
    globalknownhostsfile: one("globalknownhostsfile"),
    hashknownhosts: one("hashknownhosts"),
    // ssh's final pass appends SendEnv a second time; the set is what counts
    sendenv: [...new Set(t.get("sendenv") ?? [])],
  };
  // ssh -G prints identity files unexpanded; only ~ is expanded here for comparison
  if (compareIdentities) out.identityfile = (t.get("identityfile") ?? []).map((f) => f.replace(/^~\//, `${HOME}/`));
  return out;
}

interface Case {
  name: string;
  config: string;
  host: string;
  options?: Record<string, string>;
  want: Partial<SshHostConfig>;
  /** also compare with `ssh -G` (identity files only when they hold no % tokens) */
  crossCheck?: "all" | "no-identities";
}

const CASES: Case[] = [
  {
    name: "a literal Host matches and HostName expands %h",
    config: "Host web\n  HostName %h.example.com\n  User deploy\n  Port 2222\n",
    host: "web",
    want: { hostName: "web.example.com", user: "deploy", port: 2222 },
    crossCheck: "all",
  },
  {
    name: "Host matching is case-sensitive but HostName is lower-cased",
    config: "Host MyHost\n  HostName %h.Example.COM\nHost myhost\n  Port 1\n",
    host: "MyHost",
    want: { hostName: "myhost.example.com", port: undefined },
    crossCheck: "all",
  },
  {
    name: "* matches any run",
    config: "Host *.prod\n  User ops\n",
    host: "db.prod",
    want: { user: "ops" },
    crossCheck: "all",
  },
  {
    name: "? matches exactly one character",
    config: "Host x?\n  Port 3333\nHost *\n  Port 4444\n",
    host: "x",
    want: { port: 4444 },
    crossCheck: "all",
  },
  {
    name: "? matches one character",
    config: "Host x?\n  Port 3333\n",
    host: "xy",
    want: { port: 3333 },
    crossCheck: "all",
  },
  {
    name: "a negated pattern vetoes the Host line",
    config: "Host *.example.com !bastion.example.com\n  ProxyJump bastion.example.com\n",
    host: "bastion.example.com",
    want: { proxyJump: undefined },
    crossCheck: "all",
  },
  {
    name: "a negated pattern leaves other hosts matched",
    config: "Host *.example.com !bastion.example.com\n  ProxyJump bastion.example.com\n",
    host: "app.example.com",
    want: { proxyJump: "bastion.example.com" },
    crossCheck: "all",
  },
  {
    name: "several patterns on one Host line; commas are literal",
    config: "Host alpha beta\n  Port 1001\nHost gamma,delta\n  Port 1002\n",
    host: "beta",
    want: { port: 1001 },
    crossCheck: "all",
  },
  {
    name: "the first value wins",
    config: "Host h\n  User first\nHost *\n  User second\n  Port 10\n  Port 11\n",
    host: "h",
    want: { user: "first", port: 10 },
    crossCheck: "all",
  },
  {
    name: "IdentityFile accumulates and expands ~ %h %d %u %r %p",
    config: "Host h\n  HostName real\n  IdentityFile ~/.ssh/a_%h\n  IdentityFile %d/b_%u_%r_%p\n" +
      "Host *\n  IdentityFile ~/c\n  User bob\n",
    host: "h",
    want: {
      identityFiles: [`${HOME}/.ssh/a_real`, `${HOME}/b_${USER}_bob_22`, `${HOME}/c`],
      defaultIdentityFiles: false,
    },
    crossCheck: "no-identities",
  },
  {
    name: "no IdentityFile gives ssh's default list",
    config: "Host *\n  IdentitiesOnly yes\n",
    host: "h",
    want: { identitiesOnly: true, defaultIdentityFiles: true },
    crossCheck: "all",
  },
  {
    name: "ProxyJump none blocks a later ProxyJump",
    config: "Host bastion\n  ProxyJump none\nHost *\n  ProxyJump bastion\n",
    host: "bastion",
    want: { proxyJump: undefined },
    crossCheck: "all",
  },
  {
    name: "-o options win over the file",
    config: "Host h\n  User fileuser\n  Port 22\n  StrictHostKeyChecking yes\n",
    host: "h",
    options: { User: "cliuser", port: "2200", StrictHostKeyChecking: "accept-new" },
    want: { user: "cliuser", port: 2200, strictHostKeyChecking: "accept-new" },
    crossCheck: "all",
  },
  {
    name: "ConnectTimeout, ServerAliveInterval (time format) and ServerAliveCountMax",
    config: "Host *\n  ConnectTimeout 7\n  ServerAliveInterval 1m30s\n  ServerAliveCountMax 5\n",
    host: "h",
    want: { connectTimeoutMs: 7000, serverAliveIntervalMs: 90000, serverAliveCountMax: 5 },
    crossCheck: "all",
  },
  {
    name: "defaults: no timeouts, ServerAliveCountMax 3, known hosts files",
    config: "",
    host: "h",
    want: {
      connectTimeoutMs: undefined,
      serverAliveIntervalMs: undefined,
      serverAliveCountMax: 3,
      strictHostKeyChecking: undefined,
      userKnownHostsFiles: [`${HOME}/.ssh/known_hosts`, `${HOME}/.ssh/known_hosts2`],
      globalKnownHostsFiles: ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
      hashKnownHosts: false,
      forwardAgent: false,
      sendEnv: [],
    },
    crossCheck: "all",
  },
  ...(["yes", "true", "no", "false", "off", "ask", "accept-new"] as const).map((v): Case => ({
    name: `StrictHostKeyChecking ${v}`,
    config: `Host *\n  StrictHostKeyChecking ${v}\n`,
    host: "h",
    want: {
      strictHostKeyChecking: v === "true" ? "yes" : v === "false" || v === "off" ? "no" : v,
    },
    crossCheck: "all",
  })),
  {
    name: "UserKnownHostsFile takes several files on its first line only",
    config: "Host *\n  UserKnownHostsFile ~/k1 %d/k2_%h_%p\n  UserKnownHostsFile ~/k3\n" +
      "  GlobalKnownHostsFile none\n",
    host: "h",
    want: { userKnownHostsFiles: [`${HOME}/k1`, `${HOME}/k2_h_22`], globalKnownHostsFiles: [] },
    crossCheck: "all",
  },
  {
    name: "%C %l %L %n %k %u %r %i in UserKnownHostsFile",
    config: "Host *\n  UserKnownHostsFile /x/%C/%l/%L/%n/%k/%u/%r/%i/%%\n",
    host: "MyAlias",
    options: { User: "bob", Port: "2200" },
    want: {},
    crossCheck: "all",
  },
  {
    name: "HashKnownHosts, SendEnv with removal, ForwardAgent path",
    config: "Host *\n  HashKnownHosts yes\n  SendEnv LANG LC_* FOO\n  SendEnv -FOO BAR\n  ForwardAgent /tmp/agent\n",
    host: "h",
    want: { hashKnownHosts: true, sendEnv: ["LANG", "LC_*", "BAR"], forwardAgent: true },
    crossCheck: "all",
  },
  {
    name: "Key=Value, Key = Value, quotes, comments and case-insensitive keywords",
    config: 'host=foo  "bar baz"\n   PORT = 44 # comment\n\tuser "a b"\n# Port 55\n',
    host: "foo",
    want: { port: 44, user: "a b" },
    crossCheck: "all",
  },
  {
    name: "Match host sees the HostName, Match originalhost the alias",
    config: "Host alias\n  HostName real.example.com\nMatch host real.example.com\n  Port 1111\n" +
      `Match originalhost alias user ${USER}\n  User bob\n`,
    host: "alias",
    want: { hostName: "real.example.com", port: 1111, user: "bob" },
    crossCheck: "all",
  },
  {
    name: "Match final re-reads the config against the resolved HostName",
    config: "Host alias\n  HostName Real.Example.com\nHost real.example.com\n  User fromfinal\n" +
      "Match final\n  ConnectTimeout 9\n",
    host: "alias",
    want: { user: "fromfinal", connectTimeoutMs: 9000 },
    crossCheck: "all",
  },
  {
    name: "Match all, Match !localuser and Match localuser",
    config: `Match !localuser ${USER}\n  Port 1\nMatch localuser ${USER}\n  Port 2\nMatch all\n  User z\n`,
    host: "h",
    want: { port: 2, user: "z" },
    crossCheck: "all",
  },
  {
    name: "IdentityAgent expands ~ and none is kept",
    config: "Host a\n  IdentityAgent ~/agent.sock\nHost b\n  IdentityAgent none\n",
    host: "a",
    want: { identityAgent: `${HOME}/agent.sock` },
  },
  {
    name: "HostKeyAlias is reported",
    config: "Host h\n  HostKeyAlias shared-key\n",
    host: "h",
    want: { hostKeyAlias: "shared-key" },
  },
  {
    name: "unknown keywords are ignored",
    config: "Host *\n  FrobnicateWidgets yes\n  Port 2\n",
    host: "h",
    want: { port: 2 },
  },
];

for (const c of CASES) {
  Deno.test(`resolveSshConfig(): ${c.name}`, async () => {
    const dir = await tempDir();
    try {
      const file = `${dir}/config`;
      await Deno.writeTextFile(file, c.config);
      const cfg = await resolveSshConfig(c.host, {
        configFile: file,
        options: c.options,
        localUser: USER,
        home: HOME,
        localHostName: LOCAL_HOST,
      });
      for (const [k, v] of Object.entries(c.want)) {
        assertEquals(cfg[k as keyof SshHostConfig], v, `field ${k}`);
      }
      if (c.crossCheck) {
        const ids = c.crossCheck === "all";
        assertEquals(asSshG(cfg, ids), fromSshG(await sshG(file, c.host, c.options), ids), "differs from ssh -G");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("resolveSshConfig() reads ~/.ssh/config, relative Include globs, then the system file", async () => {
  const home = await tempDir();
  try {
    await Deno.mkdir(`${home}/.ssh/conf.d`, { recursive: true });
    await Deno.writeTextFile(
      `${home}/.ssh/config`,
      "Include conf.d/*.conf\nHost other\n  Include conf.d/never.conf\nHost *\n  IdentityFile ~/.ssh/main\n",
    );
    await Deno.writeTextFile(`${home}/.ssh/conf.d/10-a.conf`, "Host web\n  User fromA\n  Port 1010\n");
    // a Host in an included file must not leave the including file inside that block
    await Deno.writeTextFile(`${home}/.ssh/conf.d/20-b.conf`, "Host web\n  User fromB\n  ProxyJump jb\n");
    await Deno.writeTextFile(`${home}/.ssh/conf.d/never.conf`, "Port 9999\n");
    await Deno.writeTextFile(`${home}/.ssh/conf.d/ignored.txt`, "Port 8888\n");
    await Deno.writeTextFile(`${home}/system`, "Host *\n  ServerAliveInterval 15\n  Port 7\n");
    const cfg = await resolveSshConfig("web", { localUser: "me", home, systemConfig: `${home}/system` });
    assertEquals(cfg.user, "fromA");
    assertEquals(cfg.port, 1010);
    assertEquals(cfg.proxyJump, "jb");
    assertEquals(cfg.identityFiles, [`${home}/.ssh/main`]);
    assertEquals(cfg.serverAliveIntervalMs, 15000);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveSshConfig() reads no system file when -F is given, and nothing for -F none", async () => {
  const home = await tempDir();
  try {
    await Deno.writeTextFile(`${home}/system`, "Host *\n  Port 7\n");
    await Deno.writeTextFile(`${home}/f`, "Host *\n  User u\n");
    const base: ResolveOptions = { localUser: "me", home, systemConfig: `${home}/system` };
    const withF = await resolveSshConfig("h", { ...base, configFile: `${home}/f` });
    assertEquals([withF.user, withF.port], ["u", undefined]);
    const none = await resolveSshConfig("h", { ...base, configFile: "none" });
    assertEquals([none.user, none.port], [undefined, undefined]);
    const neither = await resolveSshConfig("h", base);
    assertEquals(neither.port, 7);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveSshConfig() skips Match exec without running it and warns", async () => {
  const home = await tempDir();
  try {
    const marker = `${home}/ran`;
    await Deno.writeTextFile(`${home}/f`, `Match exec "touch ${marker}"\n  Port 5\n`);
    const cfg = await resolveSshConfig("h", { configFile: `${home}/f`, localUser: "me", home });
    assertEquals(cfg.port, undefined);
    assert(cfg.warnings?.[0].includes("Match exec is not evaluated"), String(cfg.warnings));
    await assertRejects(() => Deno.stat(marker), Deno.errors.NotFound);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

const BAD: { name: string; config: string; line: number; text: string }[] = [
  { name: "a keyword without argument", config: "Host x\n  Port\n", line: 2, text: 'no argument after keyword "port"' },
  { name: "an unclosed quote", config: 'Host x\n\n  User "abc\n', line: 3, text: "invalid quotes" },
  { name: "a bad port", config: "Host x\n  Port 99999\n", line: 2, text: "badly formatted port number" },
  { name: "extra arguments", config: "Port 1 2\n", line: 1, text: "extra arguments" },
  { name: "a bad yes/no", config: "Host nomatch\n  HashKnownHosts maybe\n", line: 2, text: "unsupported option" },
  { name: "a bad time", config: "ConnectTimeout 5x\n", line: 1, text: "invalid time value" },
  { name: "a bad Match attribute", config: "Match colour blue\n", line: 1, text: "unsupported Match attribute" },
  { name: "Match all with others", config: "Match all host x\n", line: 1, text: "'all' cannot be combined" },
];

for (const b of BAD) {
  Deno.test(`resolveSshConfig() rejects ${b.name} with file:line, as ssh does`, async () => {
    const dir = await tempDir();
    try {
      const file = `${dir}/config`;
      await Deno.writeTextFile(file, b.config);
      const err = await assertRejects(
        () => resolveSshConfig("x", { configFile: file, localUser: USER, home: HOME }),
        RemoteError,
      );
      assertEquals(err.code, "config");
      assertEquals(err.exitCode, 231);
      assert(err.message.startsWith(`${file}:${b.line}: `), err.message);
      assert(err.message.includes(b.text), err.message);
      assert(err.hint, "a hint is given");
      // real ssh refuses the same file
      const ssh = await new Deno.Command("ssh", { args: ["-G", "-F", file, "x"], stdout: "null", stderr: "piped" })
        .output();
      assert(!ssh.success, "ssh -G accepts it too");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("resolveSshConfig() rejects a config file others can write", async () => {
  const home = await tempDir();
  try {
    await Deno.mkdir(`${home}/.ssh`);
    await Deno.writeTextFile(`${home}/.ssh/config`, "Port 2\n");
    await Deno.chmod(`${home}/.ssh/config`, 0o666);
    const err = await assertRejects(
      () => resolveSshConfig("h", { localUser: "me", home, systemConfig: `${home}/none` }),
      RemoteError,
    );
    assertEquals(err.message, `bad owner or permissions on ${home}/.ssh/config`);
    assertEquals(err.hint, `others must not be able to write it: chmod go-w ${home}/.ssh/config`);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveSshConfig() rejects a missing -F file", async () => {
  const err = await assertRejects(
    () => resolveSshConfig("h", { configFile: "/nonexistent/ssh_config", localUser: "me", home: "/nonexistent" }),
    RemoteError,
  );
  assertEquals(err.message, "cannot open ssh config file /nonexistent/ssh_config: no such file");
});

Deno.test("resolveSshConfig() rejects a bad -o option naming it", async () => {
  const err = await assertRejects(
    () => resolveSshConfig("h", { configFile: "none", options: { Port: "x" }, localUser: "me", home: "/h" }),
    RemoteError,
  );
  assertEquals(err.message, '-o Port=x: badly formatted port number "x"');
});

Deno.test("parseSshConfig() keeps line numbers and splits quoted arguments", () => {
  const parsed = parseSshConfig('# c\n\nHost a "b c"\n  IdentityFile "~/my key"\n', "cfg");
  assertEquals(parsed.lines.map((l) => [l.line, l.keyword, l.args]), [
    [3, "host", ["a", "b c"]],
    [4, "identityfile", ["~/my key"]],
  ]);
});

Deno.test("resolveSshConfig() reads auth, tty and command keywords as ssh -G does", async () => {
  const dir = await tempDir();
  try {
    const file = `${dir}/config`;
    await Deno.writeTextFile(
      file,
      "Host h\n  BatchMode yes\n  PreferredAuthentications publickey,password\n  PasswordAuthentication no\n" +
        "  PubkeyAuthentication yes\n  ChallengeResponseAuthentication no\n  RequestTTY force\n" +
        '  RemoteCommand tmux new -A -s "main"\n  CertificateFile ~/.ssh/%h-cert.pub\n  Compression yes\n' +
        "  LogLevel DEBUG\n  LogLevel ERROR\n",
    );
    const cfg = await resolveSshConfig("h", { configFile: file, localUser: USER, home: HOME });
    const g = await sshG(file, "h");
    const one = (k: string) => g.get(k)?.[0];
    assertEquals(cfg.batchMode, true);
    assertEquals(one("batchmode"), "yes");
    assertEquals(cfg.preferredAuthentications?.join(","), one("preferredauthentications"));
    assertEquals([cfg.passwordAuthentication, one("passwordauthentication")], [false, "no"]);
    assertEquals([cfg.pubkeyAuthentication, one("pubkeyauthentication")], [true, "true"]);
    assertEquals([cfg.kbdInteractiveAuthentication, one("kbdinteractiveauthentication")], [false, "no"]);
    assertEquals(cfg.requestTty, one("requesttty"));
    assertEquals(cfg.remoteCommand, 'tmux new -A -s "main"');
    assertEquals(one("remotecommand"), 'tmux new -A -s "main"');
    // ssh -G prints certificate files unexpanded
    assertEquals(g.get("certificatefile"), ["~/.ssh/%h-cert.pub"]);
    assertEquals(cfg.certificateFiles, [`${HOME}/.ssh/h-cert.pub`]);
    assertEquals(cfg.other, { compression: ["yes"], loglevel: ["DEBUG"] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveSshConfig() names the HostName line holding an unknown token", async () => {
  const dir = await tempDir();
  try {
    const file = `${dir}/config`;
    await Deno.writeTextFile(file, "Host h\n  HostName %x.example.com\n");
    const err = await assertRejects(
      () => resolveSshConfig("h", { configFile: file, localUser: USER, home: HOME }),
      RemoteError,
    );
    assertEquals(err.message, `${file}:2: unknown token %x in HostName`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveSshConfig() expands ${VAR} from the environment and rejects an unset one", async () => {
  const env = { KEYDIR: "/keys" };
  const ok = await resolveSshConfig("h", {
    configFile: "none",
    options: { IdentityFile: "${KEYDIR}/id_%h" },
    localUser: "me",
    home: "/home/me",
    env,
  });
  assertEquals(ok.identityFiles, ["/keys/id_h"]);
  const err = await assertRejects(
    () =>
      resolveSshConfig("h", {
        configFile: "none",
        options: { IdentityFile: "${NOPE}/id" },
        localUser: "me",
        home: "/home/me",
        env,
      }),
    RemoteError,
  );
  assertEquals(err.code, "config");
  assert(err.message.includes("${NOPE}"), err.message);
});

Deno.test("resolveSshConfig() follows absolute Include globs like ssh -G, inside and outside Host blocks", async () => {
  const dir = await tempDir();
  try {
    await Deno.mkdir(`${dir}/d`);
    await Deno.writeTextFile(`${dir}/d/a.conf`, "Host web\n  User fromA\nHost *\n  ServerAliveCountMax 9\n");
    await Deno.writeTextFile(`${dir}/d/b.conf`, "Port 2020\nIdentityFile ~/.ssh/b\n");
    await Deno.writeTextFile(`${dir}/d/.hidden.conf`, "ConnectTimeout 3\n");
    await Deno.writeTextFile(`${dir}/only_db`, "User fromOnlyDb\n");
    const file = `${dir}/config`;
    await Deno.writeTextFile(
      file,
      `Host db\n  Include ${dir}/only_db\nHost web db\n  Include ${dir}/d/*.conf\n  HashKnownHosts yes\n` +
        `Include ${dir}/nothing-*.conf\nHost *\n  IdentityFile ~/.ssh/last\n`,
    );
    for (const host of ["web", "db", "other"]) {
      const cfg = await resolveSshConfig(host, { configFile: file, localUser: USER, home: HOME });
      assertEquals(asSshG(cfg, true), fromSshG(await sshG(file, host), true), `${host} differs from ssh -G`);
    }
    const web = await resolveSshConfig("web", { configFile: file, localUser: USER, home: HOME });
    assertEquals([web.user, web.port, web.serverAliveCountMax, web.hashKnownHosts], ["fromA", 2020, 9, true]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveSshConfig() collects LocalForward, RemoteForward and DynamicForward from every block, as ssh does", async () => {
  const home = await tempDir();
  try {
    await Deno.writeTextFile(
      `${home}/f`,
      [
        "Host db*",
        "  LocalForward 5432 db.internal:5432",
        "  ExitOnForwardFailure yes",
        "Host *",
        "  LocalForward 5432 db.internal:5432", // the same one again: kept once
        "  RemoteForward 0 localhost:3000",
        "  DynamicForward *:1080",
        "  GatewayPorts no",
        "",
      ].join("\n"),
    );
    const cfg = await resolveSshConfig("db1", { localUser: "me", home, configFile: `${home}/f` });
    assertEquals(cfg.forwards?.map((f) => [f.kind, f.text]), [
      ["local", "LocalForward 5432 db.internal:5432"],
      ["remote", "RemoteForward 0 localhost:3000"],
      ["dynamic", "DynamicForward *:1080"],
    ]);
    assertEquals(cfg.forwards?.[2].listen, { kind: "tcp", host: "", port: 1080 });
    assertEquals([cfg.exitOnForwardFailure, cfg.gatewayPorts], [true, false]);
    const other = await resolveSshConfig("web", { localUser: "me", home, configFile: `${home}/f` });
    assertEquals([other.forwards?.length, other.exitOnForwardFailure], [3, undefined]);

    await Deno.writeTextFile(`${home}/bad`, "Host nothing\n  LocalForward 5432\n");
    const err = await assertRejects(
      () => resolveSshConfig("h", { localUser: "me", home, configFile: `${home}/bad` }),
      RemoteError,
    );
    assertEquals(err.message, `${home}/bad:2: bad LocalForward value '5432'`);
    assertEquals(err.hint, "write LocalForward [bind_address:]port host:hostport");
    assertEquals(err.exitCode, 231);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
