import {
  AssertionError,
  deepStrictEqual as assertEquals,
  match,
  ok as assert,
  rejects,
  strictEqual,
} from "node:assert/strict";
import { configPath, hostMapping, loadConfig, parseConfig, type UserConfig } from "./config.ts";
import { RemoteError } from "./errors.ts";

/** Writes `text` as the config file of a fresh XDG_CONFIG_HOME and loads it. */
async function loadText(text: string | Uint8Array): Promise<{ config: UserConfig; file: string }> {
  const home = await Deno.makeTempDir({ prefix: "remote-config-test-" });
  try {
    const file = `${home}/remote/config.toml`;
    await Deno.mkdir(`${home}/remote`);
    if (typeof text === "string") await Deno.writeTextFile(file, text);
    else await Deno.writeFile(file, text);
    return { config: await loadConfig({ XDG_CONFIG_HOME: home, HOME: "/home/me" }), file };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/** Loads `text` and returns the config error it must cause, with the file's path. */
async function configError(text: string | Uint8Array): Promise<{ err: RemoteError; file: string }> {
  const home = await Deno.makeTempDir({ prefix: "remote-config-test-" });
  const file = `${home}/remote/config.toml`;
  try {
    await Deno.mkdir(`${home}/remote`);
    if (typeof text === "string") await Deno.writeTextFile(file, text);
    else await Deno.writeFile(file, text);
    await loadConfig({ XDG_CONFIG_HOME: home });
  } catch (err) {
    assert(err instanceof RemoteError, `expected a RemoteError, got ${String(err)}`);
    strictEqual(err.code, "config");
    strictEqual(err.exitCode, 231);
    assert(err.hint, "every config error has a hint");
    assert(!err.message.includes("\n"), "one line");
    return { err, file };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
  throw new AssertionError({ message: `expected a config error for ${JSON.stringify(text)}` });
}

const SAMPLE = `# my remote config
[defaults]
transport = "ssh"           # default transport for a bare host
throttle_limit = 32

[hosts."*.corp.example"]    # first match wins
transport = "winrm"
port = 5986

[hosts."i-*"]
transport = "ssm"

[hosts."db?"]
user = "admin"
port = 2222

[hosts."10"]
transport = "local"

[hosts."*"]
transport = "ssh"

[[plugins]]
path = "/home/me/remote-docker/mod.ts"

[[plugins]]
npm = "remote-transport-foo@1.2.3"

[[plugins]]
exec = "remote-transport-x"

[[plugins]]
path = "plugins/local.ts"

[[plugins]]
exec = "~/bin/remote-transport-y"
`;

Deno.test("configPath() follows XDG_CONFIG_HOME, ignoring a relative one, then HOME", () => {
  strictEqual(configPath({ XDG_CONFIG_HOME: "/x/cfg", HOME: "/home/me" }), "/x/cfg/remote/config.toml");
  strictEqual(configPath({ XDG_CONFIG_HOME: "cfg", HOME: "/home/me" }), "/home/me/.config/remote/config.toml");
  strictEqual(configPath({ HOME: "/home/me" }), "/home/me/.config/remote/config.toml");
  strictEqual(configPath({}), undefined);
});

Deno.test("loadConfig() gives an empty config when there is no file", async () => {
  const home = await Deno.makeTempDir({ prefix: "remote-config-test-" });
  try {
    assertEquals(await loadConfig({ XDG_CONFIG_HOME: home }), { defaults: {}, hosts: [], plugins: [] });
    assertEquals(await loadConfig({}), { defaults: {}, hosts: [], plugins: [] });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("loadConfig() reads defaults, host patterns in file order and plugins", async () => {
  const { config, file } = await loadText(SAMPLE);
  const dir = file.slice(0, file.lastIndexOf("/"));
  assertEquals(config, {
    defaults: { transport: "ssh", throttleLimit: 32 },
    hosts: [
      { pattern: "*.corp.example", transport: "winrm", port: 5986 },
      { pattern: "i-*", transport: "ssm" },
      { pattern: "db?", user: "admin", port: 2222 },
      { pattern: "10", transport: "local" },
      { pattern: "*", transport: "ssh" },
    ],
    plugins: [
      { path: "/home/me/remote-docker/mod.ts" },
      { npm: "remote-transport-foo@1.2.3" },
      { exec: "remote-transport-x" },
      { path: `${dir}/plugins/local.ts` },
      { exec: "/home/me/bin/remote-transport-y" },
    ],
    file,
  });
});

Deno.test("hostMapping() returns the first matching pattern, case-insensitively", async () => {
  const { config } = await loadText(SAMPLE);
  strictEqual(hostMapping(config, "web1.corp.example")?.transport, "winrm");
  strictEqual(hostMapping(config, "WEB1.Corp.Example")?.port, 5986);
  strictEqual(hostMapping(config, "i-0123456789abcdef")?.transport, "ssm");
  assertEquals(hostMapping(config, "db1"), { pattern: "db?", user: "admin", port: 2222 });
  strictEqual(hostMapping(config, "10")?.transport, "local", "an integer-like pattern keeps its place");
  strictEqual(hostMapping(config, "db12")?.pattern, "*", "? is exactly one character");
  strictEqual(hostMapping(config, "corp.example")?.pattern, "*", "*. needs a dot");
  strictEqual(hostMapping(config, "web1.corpXexample")?.pattern, "*", "a dot is literal");
  const none: UserConfig = { defaults: {}, hosts: [{ pattern: "i-*", transport: "ssm" }], plugins: [] };
  strictEqual(hostMapping(none, "web1"), undefined);
});

Deno.test("hostMapping() lets an earlier pattern win over a later, narrower one", () => {
  const config = parseConfig('[hosts."*"]\nport = 1\n[hosts."web1"]\nport = 2\n', "/c/config.toml");
  strictEqual(hostMapping(config, "web1")?.port, 1);
});

Deno.test("parseConfig() reads a host pattern's via, the --via of matching hosts", () => {
  const config = parseConfig('[hosts."i-*"]\nvia = "ssm"\nuser = "ec2-user"\n', "/c/config.toml");
  strictEqual(hostMapping(config, "i-0abc")?.via, "ssm");
  strictEqual(hostMapping(config, "db1"), undefined);
});

Deno.test("loadConfig() reports a TOML syntax error at config.toml:LINE", async () => {
  const { err, file } = await configError('[defaults]\ntransport = "ssh"\nthrottle_limit = \n');
  assert(err.message.startsWith(`${file}:3:`), err.message);
  assert(err.message.includes("config.toml:3"), err.message);
  assert(err.message.includes("invalid TOML"), err.message);
  assert(err.hint?.includes("fix line 3"), err.hint);
});

Deno.test("loadConfig() reports a key defined twice at its second line", async () => {
  const { err } = await configError('[hosts."a"]\nport = 1\n\nport = 2\n');
  match(err.message, /config\.toml:4:\d+: invalid TOML: /);
});

Deno.test("loadConfig() reports a wrong type at the line of its key", async () => {
  const { err, file } = await configError(SAMPLE.replace("throttle_limit = 32", 'throttle_limit = "32"'));
  strictEqual(
    err.message,
    `${file}:4: defaults.throttle_limit must be an integer from 1 to 10000, not a string ("32")`,
  );
  strictEqual(err.hint, "write it like: throttle_limit = 32");
});

Deno.test("loadConfig() reports a bad port inside a quoted host table at its line", async () => {
  const { err, file } = await configError(SAMPLE.replace("port = 2222", "port = 70000"));
  strictEqual(err.message, `${file}:15: hosts."db?".port must be an integer from 1 to 65535, not 70000`);
});

Deno.test("loadConfig() reports wrong types of whole tables and of dotted keys", async () => {
  let { err, file } = await configError('hosts = "all"\n');
  strictEqual(err.message, `${file}:1: hosts must be a table, not a string ("all")`);
  ({ err, file } = await configError('[defaults]\ntransport = "ssh"\n\n[hosts]\n"web1".port = true\n'));
  strictEqual(err.message, `${file}:5: hosts.web1.port must be an integer from 1 to 65535, not a boolean`);
  ({ err, file } = await configError("[[plugins]]\npath = 1\n"));
  strictEqual(err.message, `${file}:2: plugins[0].path must be a non-empty string, not an integer`);
  ({ err, file } = await configError('[defaults]\ntransport = ""\n'));
  strictEqual(err.message, `${file}:2: defaults.transport must be a non-empty string, not an empty string`);
  ({ err, file } = await configError("plugins = 3\n"));
  strictEqual(err.message, `${file}:1: plugins must be a list of [[plugins]] tables, not an integer`);
});

Deno.test("loadConfig() reports an unknown key at its line, with a guess and the allowed keys", async () => {
  const { err, file } = await configError(SAMPLE.replace('transport = "ssm"', 'tranport = "ssm"'));
  strictEqual(err.message, `${file}:11: unknown key tranport in [hosts."i-*"]`);
  strictEqual(err.hint, 'did you mean transport? the keys allowed in [hosts."i-*"] are: transport, port, user, via');
  const top = await configError('[default]\ntransport = "ssh"\n');
  strictEqual(top.err.message, `${top.file}:1: unknown key default at the top level`);
  assert(top.err.hint?.startsWith("did you mean defaults?"), top.err.hint);
});

Deno.test("loadConfig() tells to quote a host pattern with dots", async () => {
  const { err, file } = await configError("[hosts.web1.corp]\nport = 22\n");
  strictEqual(err.message, `${file}:1: [hosts.web1] holds a table corp, not a setting`);
  strictEqual(err.hint, 'quote a pattern that contains dots: [hosts."web1.corp"]');
});

Deno.test("loadConfig() counts lines past a multi-line string", async () => {
  const { err, file } = await configError('[defaults]\ntransport = """\nport = 1\n"""\nthrottle_limit = 0\n');
  strictEqual(err.message, `${file}:5: defaults.throttle_limit must be an integer from 1 to 10000, not 0`);
});

Deno.test("loadConfig() reports the unknown key of the right [[plugins]] entry", async () => {
  const { err, file } = await configError(`${SAMPLE}\n[[plugins]]\npath = "/x.ts"\nenabled = true\n`);
  const lines = SAMPLE.split("\n").length;
  strictEqual(err.message, `${file}:${lines + 3}: unknown key enabled in [[plugins]]`);
});

Deno.test("loadConfig() rejects a plugin with none or two of path, npm, exec", async () => {
  let { err, file } = await configError('[[plugins]]\npath = "/a.ts"\nnpm = "b@1.0.0"\n');
  strictEqual(err.message, `${file}:1: a [[plugins]] entry needs exactly one of path, npm, exec; this one has 2`);
  ({ err, file } = await configError('[[plugins]]\npath = "/a.ts"\n[[plugins]]\n'));
  strictEqual(err.message, `${file}:3: a [[plugins]] entry needs exactly one of path, npm, exec; this one has 0`);
});

Deno.test("loadConfig() rejects a file that is not UTF-8 and one that is a directory", async () => {
  const { err, file } = await configError(new Uint8Array([0x5b, 0xff, 0x5d]));
  strictEqual(err.message, `cannot read config file ${file}: it is not UTF-8 text`);
  const home = await Deno.makeTempDir({ prefix: "remote-config-test-" });
  try {
    await Deno.mkdir(`${home}/remote/config.toml`, { recursive: true });
    await rejects(
      loadConfig({ XDG_CONFIG_HOME: home }),
      (e: unknown) => e instanceof RemoteError && e.code === "config" && e.message.includes("cannot read config file"),
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
