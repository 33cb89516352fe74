/**
 * Parameter-set resolution against PowerShell's own parameter sets (Enter-PSSession and
 * Connect-PSSession as `Get-Command Enter-PSSession -Syntax` shows them in PowerShell 7) and remote's
 * variant: how PowerShell binds each case, and the error texts it gives (about_Parameter_Sets,
 * ParameterBinderController.cs).
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects, strictEqual, throws } from "node:assert/strict";
import type { ParameterSpec, Prompter } from "../plugins/mod.ts";
import { UsageError } from "./errors.ts";
import {
  type BindingErrorId,
  flagOf,
  ParameterBindingError,
  promptForMissing,
  type Resolution,
  resolveParameterSet,
  setsOf,
  type VerbSpec,
} from "./parameter_set.ts";

const s = (kind: "string" | "switch" | "guid" | "uri" | "credential" | "map" | "list" | "duration") => ({ kind });
const port = { kind: "int", min: 1, max: 65535 } as const;
const auth = {
  kind: "enum",
  values: ["Default", "Basic", "Negotiate", "NegotiateWithImplicitCredential", "Credssp", "Digest", "Kerberos"],
} as const;

function param(name: string, type: ParameterSpec["type"], sets?: ParameterSpec["sets"], extra = {}): ParameterSpec {
  return { name, type, sets, help: `the ${name}`, ...extra };
}

// (a) Enter-PSSession, default ComputerName. Credential has no position in ComputerName/Uri (source, not docs).
const cnUri = { ComputerName: {}, Uri: {} };
const enterPs: VerbSpec = {
  name: "enter",
  summary: "Starts an interactive session with a remote computer",
  defaultSet: "ComputerName",
  parameters: [
    param("ComputerName", s("string"), { ComputerName: { position: 0, mandatory: true } }, { aliases: ["Cn"] }),
    param("Credential", s("credential"), {
      ...cnUri,
      VMId: { position: 1, mandatory: true },
      VMName: { position: 1, mandatory: true },
    }),
    param("EnableNetworkAccess", s("switch"), cnUri),
    param("ConfigurationName", s("string"), { ...cnUri, VMId: {}, VMName: {}, ContainerId: {} }),
    param("Port", port, { ComputerName: {}, SSHHost: {} }),
    param("UseSSL", s("switch"), { ComputerName: {} }),
    param("ApplicationName", s("string"), { ComputerName: {} }),
    param("SessionOption", s("string"), cnUri),
    param("Authentication", auth, cnUri),
    param("CertificateThumbprint", s("string"), cnUri),
    param("HostName", s("string"), { SSHHost: { position: 0, mandatory: true } }),
    param("Options", s("map"), { SSHHost: {} }),
    param("UserName", s("string"), { SSHHost: {} }),
    param("KeyFilePath", s("string"), { SSHHost: {} }, { aliases: ["IdentityFilePath"] }),
    param("Subsystem", s("string"), { SSHHost: {} }),
    param("ConnectingTimeout", { kind: "int" }, { SSHHost: {} }),
    param("SSHTransport", s("switch"), { SSHHost: {} }),
    param("Session", s("string"), { Session: { position: 0 } }),
    param("ConnectionUri", s("uri"), { Uri: { position: 1 } }, { aliases: ["URI", "CU"] }),
    param("AllowRedirection", s("switch"), { Uri: {} }),
    param("InstanceId", s("guid"), { InstanceId: {} }),
    param("Id", { kind: "int" }, { Id: { position: 0 } }),
    param("Name", s("string"), { Name: {} }),
    param("VMId", s("guid"), { VMId: { position: 0, mandatory: true } }, { aliases: ["VMGuid"] }),
    param("VMName", s("string"), { VMName: { position: 0, mandatory: true } }),
    param("ContainerId", s("string"), { ContainerId: { position: 0, mandatory: true } }),
    param("RunAsAdministrator", s("switch"), { ContainerId: {} }),
  ],
  examples: [{ command: "remote enter --computer-name srv1", description: "a session on srv1" }],
};

// (b) Connect-PSSession, default Name; ComputerName is positional in the ComputerName set (source).
const cnBoth = { ComputerNameGuid: {}, ComputerName: {} };
const uriBoth = { ConnectionUriGuid: {}, ConnectionUri: {} };
const connectPs: VerbSpec = {
  name: "connect",
  summary: "Reconnects to disconnected sessions",
  defaultSet: "Name",
  parameters: [
    param("Name", s("string"), { Name: { mandatory: true }, ComputerName: {}, ConnectionUri: {} }),
    param("Session", s("string"), { Session: { position: 0, mandatory: true } }),
    param("ComputerName", s("string"), {
      ComputerNameGuid: { mandatory: true },
      ComputerName: { position: 0, mandatory: true },
    }, { aliases: ["Cn"] }),
    param("ApplicationName", s("string"), cnBoth),
    param("ConfigurationName", s("string"), { ...cnBoth, ...uriBoth }),
    param("Credential", s("credential"), { ...cnBoth, ...uriBoth }),
    param("Authentication", auth, { ...cnBoth, ...uriBoth }),
    param("CertificateThumbprint", s("string"), { ...cnBoth, ...uriBoth }),
    param("Port", port, cnBoth),
    param("UseSSL", s("switch"), cnBoth),
    param("SessionOption", s("string"), { ...cnBoth, ...uriBoth }),
    param("ConnectionUri", s("uri"), {
      ConnectionUriGuid: { position: 0, mandatory: true },
      ConnectionUri: { position: 0, mandatory: true },
    }, { aliases: ["URI", "CU"] }),
    param("AllowRedirection", s("switch"), uriBoth),
    param("InstanceId", s("guid"), {
      ComputerNameGuid: { mandatory: true },
      ConnectionUriGuid: { mandatory: true },
      InstanceId: { mandatory: true },
    }),
    param("Id", { kind: "int" }, { Id: { position: 0, mandatory: true } }),
    param("ThrottleLimit", { kind: "int" }),
    param("WhatIf", s("switch")),
    param("Confirm", s("switch")),
  ],
  examples: [],
};

// (c) remote's enter: SSH is the default (HostName@0), WinRM's ComputerName/Uri, SSM's Target, selectors.
const sshHost = { SSHHost: {} };
const remoteEnter: VerbSpec = {
  name: "enter",
  summary: "Starts an interactive session",
  defaultSet: "SSHHost",
  parameters: [
    param("HostName", s("string"), { SSHHost: { position: 0, mandatory: true } }, { aliases: ["host"] }),
    param("Port", port, { SSHHost: {}, ComputerName: {} }, { short: "p", default: "22" }),
    param("UserName", s("string"), sshHost, { short: "l", aliases: ["user"] }),
    param("KeyFilePath", s("list"), sshHost, { short: "i", aliases: ["identity-file-path"] }),
    param("ConnectingTimeout", s("duration"), sshHost),
    param("SSHTransport", s("switch"), sshHost),
    param("Options", s("map"), sshHost, { short: "o" }),
    param("ForwardAgent", s("switch"), sshHost, { short: "A" }),
    param("ComputerName", s("string"), { ComputerName: { position: 0, mandatory: true } }, { aliases: ["cn"] }),
    param("Credential", s("credential"), cnUri),
    param("UseSSL", s("switch"), { ComputerName: {} }),
    param("Authentication", { kind: "enum", values: ["Default", "Basic", "Negotiate"] }, cnUri),
    param("SkipCACheck", s("switch"), cnUri),
    param("ConnectionUri", s("uri"), { Uri: { position: 0, mandatory: true } }, { aliases: ["uri"] }),
    param("Target", s("string"), { Target: { mandatory: true } }),
    param("DocumentName", s("string"), { Target: {} }),
    param("Parameter", s("map"), { Target: {} }),
    param("Id", { kind: "int", min: 1 }, { Id: { position: 0, mandatory: true } }),
    param("InstanceId", s("guid"), { InstanceId: { mandatory: true } }),
    param("Name", s("string"), { Name: { mandatory: true } }),
    param("Quiet", s("switch"), undefined, { short: "q" }),
  ],
  examples: [],
};

// remote's invoke: a list of targets, the command after `--`.
const remoteInvoke: VerbSpec = {
  name: "invoke",
  summary: "Runs a command",
  defaultSet: "SSHHost",
  parameters: [
    param("HostName", s("list"), { SSHHost: { position: 0, mandatory: true } }),
    param("Port", port, sshHost, { short: "p" }),
    param("ComputerName", s("string"), { ComputerName: { mandatory: true } }),
    param("ThrottleLimit", { kind: "int", min: 1, max: 1024 }),
  ],
  remainder: { name: "Command", help: "the command to run", mandatorySets: ["SSHHost", "ComputerName"] },
  examples: [],
};

const GUID = "0b4a3c2e-6f1d-4e8a-9c7b-2d5e8f1a3b6c";

function fails(verb: VerbSpec, argv: string[], id: BindingErrorId, message: string, hint?: string): void {
  let caught: unknown;
  try {
    resolveParameterSet(verb, argv);
  } catch (error) {
    caught = error;
  }
  assert(caught instanceof ParameterBindingError, `expected an error for ${argv.join(" ")}, got ${caught}`);
  assert(caught instanceof UsageError);
  strictEqual(caught.exitCode, 230);
  strictEqual(caught.message, message);
  strictEqual(caught.errorId, id);
  if (hint !== undefined) strictEqual(caught.hint, hint);
  assert(caught.hint && caught.hint.length > 0, "every usage error has a hint");
  assert(!/\.$/.test(caught.message) && !caught.message.includes("\n"));
}

function bound(verb: VerbSpec, argv: string[]): Resolution {
  return resolveParameterSet(verb, argv);
}

// §4, the 17 cases ---------------------------------------------------------------------------------

Deno.test("resolveParameterSet() binds a bare target to the default set (case 1)", () => {
  const ps = bound(enterPs, ["srv1"]);
  strictEqual(ps.set, "ComputerName");
  assertEquals(ps.values, { ComputerName: "srv1" });
  const remote = bound(remoteEnter, ["srv1"]);
  strictEqual(remote.set, "SSHHost");
  assertEquals(remote.values, { HostName: "srv1" });
  assertEquals(remote.given, ["HostName"]);
  assertEquals(remote.missing, []);
});

Deno.test("resolveParameterSet() narrows by a switch before positionals (case 2)", () => {
  const r = bound(enterPs, ["--ssh-transport", "web1"]);
  strictEqual(r.set, "SSHHost");
  assertEquals(r.values, { SSHTransport: true, HostName: "web1" });
  assertEquals(r.given, ["SSHTransport", "HostName"]);
});

Deno.test("resolveParameterSet() matches a unique prefix (case 3)", () => {
  const r = bound(enterPs, ["--key", "~/.ssh/id", "web1"]);
  strictEqual(r.set, "SSHHost");
  assertEquals(r.values, { KeyFilePath: "~/.ssh/id", HostName: "web1" });
});

Deno.test("resolveParameterSet() rejects an ambiguous prefix, listing every match (case 4)", () => {
  fails(
    enterPs,
    ["--co", "x"],
    "AmbiguousParameter",
    "--co is ambiguous: it matches --computer-name, --configuration-name, --connecting-timeout, --connection-uri, " +
      "--container-id",
    "type more of the name, e.g. --com for --computer-name",
  );
});

Deno.test("resolveParameterSet() rejects --us between --use-ssl and --user-name (case 5)", () => {
  fails(enterPs, ["--us"], "AmbiguousParameter", "--us is ambiguous: it matches --use-ssl, --user-name");
});

Deno.test("resolveParameterSet() names the clashing pair and their sets (case 6)", () => {
  fails(
    enterPs,
    ["--computer-name", "a", "--host-name", "b"],
    "ParameterSetConflict",
    "--computer-name [ComputerName] cannot be used with --host-name [SSHHost]",
    "drop --host-name to use set ComputerName, or --computer-name to use set SSHHost",
  );
});

Deno.test("resolveParameterSet() rejects a stray positional, naming the filled slot (case 7)", () => {
  fails(
    enterPs,
    ["--host-name", "a", "b"],
    "PositionalParameterNotFound",
    'unexpected argument "b": set SSHHost takes 1 bare argument (--host-name "a")',
    'name the option "b" belongs to; see the options with: remote enter --help',
  );
});

Deno.test("resolveParameterSet() shows a slot filled by a bare argument in brackets", () => {
  fails(
    enterPs,
    ["a", "b"],
    "PositionalParameterNotFound",
    'unexpected argument "b": set ComputerName takes 1 bare argument ([--computer-name] "a")',
  );
});

Deno.test("resolveParameterSet() leaves the default set's mandatory parameter missing (case 8)", () => {
  const ps = bound(enterPs, ["--port", "22"]);
  strictEqual(ps.set, "ComputerName");
  assertEquals(ps.missing, ["ComputerName"]);
  const remote = bound(remoteEnter, ["--port", "22"]);
  strictEqual(remote.set, "SSHHost");
  assertEquals(remote.values, { Port: 22 });
  assertEquals(remote.missing, ["HostName"]);
});

Deno.test("resolveParameterSet() chooses VMName and reports --credential missing (case 9)", () => {
  const r = bound(enterPs, ["--vm-name", "v1"]);
  strictEqual(r.set, "VMName");
  assertEquals(r.missing, ["Credential"]);
});

Deno.test("resolveParameterSet() with no argv picks the default set and binds nothing (case 10)", async () => {
  const ps = bound(enterPs, []);
  strictEqual(ps.set, "ComputerName");
  assertEquals(ps.missing, ["ComputerName"]);
  await rejects(
    promptForMissing(enterPs, ps, noTerminal),
    (e: unknown) =>
      e instanceof ParameterBindingError && e.errorId === "MissingMandatoryParameter" &&
      e.message === "missing --computer-name for parameter set ComputerName" &&
      e.hint === "add [--computer-name] <string>, or run in a terminal to be asked",
  );
  // remote: nothing given at all is the caller's cue for the local loopback session (Example 1)
  const remote = bound(remoteEnter, []);
  assertEquals(remote.given, []);
  strictEqual(remote.set, "SSHHost");
});

Deno.test("resolveParameterSet() lets the default set break a 3-way tie (case 11)", () => {
  const r = bound(connectPs, ["--name", "s1"]);
  strictEqual(r.set, "Name");
  assertEquals(r.missing, []);
});

Deno.test("resolveParameterSet() drops sets lacking a mandatory parameter (case 12)", () => {
  const r = bound(connectPs, ["--computer-name", "srv"]);
  strictEqual(r.set, "ComputerName");
  assertEquals(r.missing, []);
});

Deno.test("resolveParameterSet() picks the only complete set among three (case 13)", () => {
  const r = bound(connectPs, ["--instance-id", GUID.toUpperCase()]);
  strictEqual(r.set, "InstanceId");
  strictEqual(r.values.InstanceId, GUID);
});

Deno.test("resolveParameterSet() picks ConnectionUri over ConnectionUriGuid (case 14)", () => {
  const r = bound(connectPs, ["--connection-uri", "http://h:5985/wsman"]);
  strictEqual(r.set, "ConnectionUri");
  assert(r.values.ConnectionUri instanceof URL);
  strictEqual(String(r.values.ConnectionUri), "http://h:5985/wsman");
});

Deno.test("resolveParameterSet() rejects two matching sets, naming what each lacks (case 15)", () => {
  fails(
    connectPs,
    ["--configuration-name", "x"],
    "AmbiguousParameterSet",
    "cannot choose a parameter set for --configuration-name: ComputerName needs --computer-name; ConnectionUri " +
      "needs --connection-uri; ComputerNameGuid needs --computer-name, --instance-id; ConnectionUriGuid needs " +
      "--connection-uri, --instance-id",
    "add --computer-name to pick set ComputerName; add --connection-uri to pick set ConnectionUri; " +
      "add --computer-name --instance-id to pick set ComputerNameGuid; " +
      "add --connection-uri --instance-id to pick set ConnectionUriGuid",
  );
});

Deno.test("resolveParameterSet() never narrows by an all-sets parameter (case 16)", () => {
  const r = bound(connectPs, ["--throttle-limit", "5"]);
  strictEqual(r.set, "Name");
  assertEquals(r.values, { ThrottleLimit: 5 });
  assertEquals(r.missing, ["Name"]);
});

Deno.test("resolveParameterSet() binds digits to an int slot before a string one (case 17)", () => {
  // Chosen and documented: digits are PowerShell's int literal, so `enter 3` attaches to session Id 3.
  const ps = bound(enterPs, ["3"]);
  strictEqual(ps.set, "Id");
  assertEquals(ps.values, { Id: 3 });
  const remote = bound(remoteEnter, ["3"]);
  strictEqual(remote.set, "Id");
  // a host name with a letter stays a host
  strictEqual(bound(remoteEnter, ["3a"]).set, "SSHHost");
});

// remote's own sets ---------------------------------------------------------------------------------

Deno.test("resolveParameterSet() sends --computer-name to WinRM and --target to SSM", () => {
  const winrm = bound(remoteEnter, ["--computer-name", "win01", "--credential", "CORP\\admin", "--use-ssl"]);
  strictEqual(winrm.set, "ComputerName");
  assertEquals(winrm.values, { ComputerName: "win01", Credential: { user: "CORP\\admin" }, UseSSL: true });
  const ssm = bound(remoteEnter, ["--target", "i-0123", "--parameter", "portNumber=22", "--parameter", "a=b=c"]);
  strictEqual(ssm.set, "Target");
  assertEquals(ssm.values, { Target: "i-0123", Parameter: { portNumber: "22", a: "b=c" } });
  const uri = bound(remoteEnter, ["--uri", "https://win01:5986/wsman", "--skip-ca-check"]);
  strictEqual(uri.set, "Uri");
  strictEqual(String(uri.values.ConnectionUri), "https://win01:5986/wsman");
});

Deno.test("resolveParameterSet() rejects a bare argument for a set without positions", () => {
  fails(
    remoteEnter,
    ["--target", "i-1", "web1"],
    "PositionalParameterNotFound",
    'unexpected argument "web1": set Target takes no bare arguments',
  );
});

Deno.test("resolveParameterSet() reports a positional that fails its type", () => {
  fails(
    remoteEnter,
    ["--uri", "x", "y"],
    "ParameterArgumentTransformationError",
    '--uri (--connection-uri) expects a url with a scheme, got "x"',
    "e.g. --connection-uri https://host:5986/wsman",
  );
  const byId: VerbSpec = {
    name: "receive",
    summary: "",
    parameters: [param("Id", { kind: "int", min: 1 }, { Id: { position: 0 } })],
    examples: [],
  };
  fails(
    byId,
    ["0"],
    "PositionalParameterNotFound",
    'argument "0" does not fit [--id], which expects an integer of at least 1',
    "e.g. --id 22, or name the option the argument belongs to",
  );
});

Deno.test("resolveParameterSet() names the smallest clash among several options", () => {
  fails(
    remoteEnter,
    ["--port", "22", "--use-ssl", "-l", "me"],
    "ParameterSetConflict",
    "--use-ssl [ComputerName] cannot be used with -l (--user-name) [SSHHost]",
    "drop --user-name to use set ComputerName, or --use-ssl to use set SSHHost",
  );
});

Deno.test("resolveParameterSet() lists complete sets in a tie and the option that picks each", () => {
  const verb: VerbSpec = {
    name: "pick",
    summary: "",
    parameters: [
      param("Shared", s("string"), { A: {}, B: {} }),
      param("OnlyA", s("switch"), { A: {} }),
      param("OnlyB", s("switch"), { B: {} }),
    ],
    examples: [],
  };
  fails(
    verb,
    ["--shared", "x"],
    "AmbiguousParameterSet",
    "cannot choose between parameter sets A and B for --shared: each has what it needs",
    "add --only-a to pick set A; add --only-b to pick set B",
  );
  strictEqual(bound(verb, ["--shared", "x", "--only-b"]).set, "B");
});

Deno.test("resolveParameterSet() narrows a positional bind to the sets where it has that position", () => {
  // PowerShell narrows by every set of the parameter, so B (where it is named) would stay and tie with A
  const verb: VerbSpec = {
    name: "pos",
    summary: "",
    parameters: [
      param("Target", s("string"), { A: { position: 0, mandatory: true }, B: { mandatory: true } }),
      param("Extra", s("switch"), { B: {} }),
    ],
    examples: [],
  };
  strictEqual(bound(verb, ["v"]).set, "A");
  strictEqual(bound(verb, ["--target", "v", "--extra"]).set, "B");
  fails(
    verb,
    ["--extra", "v"],
    "PositionalParameterNotFound",
    'unexpected argument "v": set B takes no bare arguments',
  );
});

// parsing -------------------------------------------------------------------------------------------

Deno.test("resolveParameterSet() accepts --flag=value, short flags and attached short values", () => {
  for (const argv of [["--port=2222", "h"], ["-p", "2222", "h"], ["-p2222", "h"], ["h", "-p=2222"]]) {
    const r = bound(remoteEnter, argv);
    assertEquals(r.values, { Port: 2222, HostName: "h" }, argv.join(" "));
  }
});

Deno.test("resolveParameterSet() clusters short switches only", () => {
  const r = bound(remoteEnter, ["-Aq", "h"]);
  assertEquals(r.values, { ForwardAgent: true, Quiet: true, HostName: "h" });
  fails(
    remoteEnter,
    ["-Ap22", "h"],
    "MissingArgument",
    "-p takes a value, so it cannot be grouped with other short options in -Ap22",
    "write them apart: -A -p 22",
  );
  fails(remoteEnter, ["-Ax"], "NamedParameterNotFound", "unknown option -x in -Ax");
});

Deno.test("resolveParameterSet() takes a switch without a value, and =false", () => {
  assertEquals(bound(remoteEnter, ["--ssh-transport", "h"]).values, { SSHTransport: true, HostName: "h" });
  assertEquals(bound(remoteEnter, ["--ssh-transport=false", "h"]).values, { SSHTransport: false, HostName: "h" });
  fails(
    remoteEnter,
    ["--ssh-transport=maybe"],
    "ParameterArgumentTransformationError",
    '--ssh-transport is a switch: it takes true or false, got "maybe"',
    "write --ssh-transport to turn it on, --ssh-transport=false to turn it off",
  );
});

Deno.test("resolveParameterSet() matches names case-insensitively and lets an exact alias beat a prefix", () => {
  // `--user` is an alias of UserName and a prefix of --user-name only; `--us` also matches --use-ssl
  assertEquals(bound(remoteEnter, ["--USER", "me", "h"]).values, { UserName: "me", HostName: "h" });
  // `--host` is HostName's alias although it is a prefix of --host-name only anyway; `--cn` is exact
  assertEquals(bound(remoteEnter, ["--cn", "w"]).values, { ComputerName: "w" });
  // the PowerShell name run together also works
  assertEquals(bound(remoteEnter, ["--ComputerName", "w"]).values, { ComputerName: "w" });
  fails(
    remoteEnter,
    ["--us", "x"],
    "AmbiguousParameter",
    "--us is ambiguous: it matches --use-ssl, --user-name",
  );
  // an alias matched by prefix is shown with its canonical name (PowerShell #6343)
  fails(
    remoteEnter,
    ["--i", "x"],
    "AmbiguousParameter",
    "--i is ambiguous: it matches --id, --identity-file-path (--key-file-path), --instance-id",
  );
});

Deno.test("resolveParameterSet() suggests the closest spelling for an unknown option", () => {
  fails(
    remoteEnter,
    ["--prot", "22"],
    "NamedParameterNotFound",
    "unknown option --prot",
    "did you mean --port? see: remote enter --help",
  );
  fails(
    remoteEnter,
    ["--zzzzzz"],
    "NamedParameterNotFound",
    "unknown option --zzzzzz",
    "see the options with: remote enter --help",
  );
  fails(
    remoteEnter,
    ["-ComputerName", "w"],
    "NamedParameterNotFound",
    "unknown option -ComputerName",
    "long options take two dashes: --computer-name",
  );
});

Deno.test("resolveParameterSet() rejects an option given twice unless it repeats", () => {
  fails(remoteEnter, ["--port", "1", "--port", "2"], "ParameterAlreadyBound", "--port given twice");
  fails(remoteEnter, ["-p", "1", "--port", "2"], "ParameterAlreadyBound", "--port given twice (as -p and --port)");
  const r = bound(remoteEnter, ["-i", "a,b", "--key-file-path", "c", "-o", "A=1", "-oB=2", "h"]);
  assertEquals(r.values.KeyFilePath, ["a", "b", "c"]);
  assertEquals(r.values.Options, { A: "1", B: "2" });
  assertEquals(r.given, ["KeyFilePath", "Options", "HostName"]);
});

Deno.test("resolveParameterSet() reports a value left out", () => {
  fails(
    remoteEnter,
    ["h", "--port"],
    "MissingArgument",
    "--port needs a value",
    "write --port <int>; use --port=<value> for a value that starts with -",
  );
  fails(remoteEnter, ["--user-name", "--port", "1"], "MissingArgument", "--user-name needs a value");
  assertEquals(bound(remoteEnter, ["--user-name=-me", "h"]).values, { UserName: "-me", HostName: "h" });
});

Deno.test("resolveParameterSet() converts types with clear errors", () => {
  fails(
    remoteEnter,
    ["--port", "70000"],
    "ParameterArgumentTransformationError",
    '--port expects an integer from 1 to 65535, got "70000"',
    "e.g. --port 22",
  );
  fails(
    remoteEnter,
    ["-p", "x"],
    "ParameterArgumentTransformationError",
    '-p (--port) expects an integer from 1 to 65535, got "x"',
  );
  fails(
    remoteEnter,
    ["--instance-id", "nope"],
    "ParameterArgumentTransformationError",
    '--instance-id expects a guid, got "nope"',
  );
  fails(
    remoteEnter,
    ["--connecting-timeout", "soon"],
    "ParameterArgumentTransformationError",
    '--connecting-timeout expects a duration (90s, 15m, 15h, 2d or seconds), got "soon"',
  );
  fails(
    remoteEnter,
    ["--authentication", "ntlm"],
    "ParameterArgumentTransformationError",
    '--authentication expects one of Default, Basic, Negotiate, got "ntlm"',
    "e.g. --authentication Default",
  );
  fails(
    remoteEnter,
    ["-o", "novalue"],
    "ParameterArgumentTransformationError",
    '-o (--options) expects key=value, got "novalue"',
  );
  fails(
    remoteEnter,
    ["--connection-uri", "h:5985"],
    "ParameterArgumentTransformationError",
    '--connection-uri expects a url with a scheme, got "h:5985"',
  );
  const durations = [["90s", 90_000], ["15m", 900_000], ["15h", 54_000_000], ["2d", 172_800_000], ["30", 30_000]];
  for (const [text, ms] of durations) {
    strictEqual(bound(remoteEnter, ["h", "--connecting-timeout", String(text)]).values.ConnectingTimeout, ms);
  }
  strictEqual(bound(remoteEnter, ["--authentication", "basic", "--cn", "w"]).values.Authentication, "Basic");
});

Deno.test("resolveParameterSet() collects words after -- as the remainder", () => {
  const r = bound(remoteInvoke, ["db1", "-p", "2", "--", "ls", "-l", "--port"]);
  strictEqual(r.set, "SSHHost");
  assertEquals(r.values, { HostName: ["db1"], Port: 2, Command: ["ls", "-l", "--port"] });
  assertEquals(r.given, ["Port", "HostName", "Command"]);
  // a list in the last slot takes every bare word
  assertEquals(bound(remoteInvoke, ["db1", "db2,db3", "--", "uptime"]).values.HostName, ["db1", "db2", "db3"]);
  // and a list named in the last open slot takes the bare words after it: `--container-id a b c`
  assertEquals(bound(remoteInvoke, ["--host-name", "db1", "db2", "db3", "--", "x"]).values.HostName, [
    "db1",
    "db2",
    "db3",
  ]);
  const noCommand = bound(remoteInvoke, ["db1"]);
  assertEquals(noCommand.missing, ["Command"]);
  fails(
    remoteInvoke,
    ["--computer-name", "w", "ls"],
    "PositionalParameterNotFound",
    'unexpected argument "ls": set ComputerName takes no bare arguments',
    "put the command after --, e.g. remote invoke <target> -- ls",
  );
  // with no remainder declared, -- only ends options
  assertEquals(bound(remoteEnter, ["--", "-weird-host"]).values, { HostName: "-weird-host" });
});

// prompting -----------------------------------------------------------------------------------------

const noTerminal: Prompter = {
  interactive: false,
  ask: () => Promise.reject(new Error("must not be asked")),
};

function scripted(answers: string[]): Prompter & { asked: { question: string; secret: boolean }[] } {
  const asked: { question: string; secret: boolean }[] = [];
  return {
    interactive: true,
    asked,
    ask(question, options) {
      asked.push({ question, secret: options?.secret === true });
      const answer = answers.shift();
      return answer === undefined ? Promise.reject(new Error("no more answers")) : Promise.resolve(answer);
    },
  };
}

Deno.test("promptForMissing() lists every missing option when nobody can answer", async () => {
  const verb: VerbSpec = {
    name: "new",
    summary: "",
    parameters: [
      param("VMName", s("string"), { VMName: { position: 0, mandatory: true } }),
      param("Credential", s("credential"), { VMName: { mandatory: true } }),
      param("Force", s("switch")),
    ],
    remainder: { name: "Command", help: "", mandatorySets: ["VMName"] },
    examples: [],
  };
  const r = bound(verb, ["--force"]);
  assertEquals(r.missing, ["VMName", "Credential", "Command"]);
  await rejects(
    promptForMissing(verb, r, noTerminal),
    (e: unknown) =>
      e instanceof ParameterBindingError && e.exitCode === 230 &&
      e.message === "missing --vm-name, --credential, -- <command> for parameter set VMName" &&
      e.hint === "add [--vm-name] <string> --credential <user> -- <command>, or run in a terminal to be asked",
  );
});

Deno.test("promptForMissing() asks for a credential's password without echo", async () => {
  const r = bound(enterPs, ["--vm-name", "v1"]);
  const prompter = scripted(["admin", "s3cret"]);
  const done = await promptForMissing(enterPs, r, prompter);
  assertEquals(done.values, { VMName: "v1", Credential: { user: "admin", password: "s3cret" } });
  assertEquals(done.missing, []);
  assertEquals(prompter.asked, [
    { question: "user name for --credential: ", secret: false },
    { question: "password for admin: ", secret: true },
  ]);
});

Deno.test("promptForMissing() converts answers, asks again on a bad one, and hides secrets", async () => {
  const verb: VerbSpec = {
    name: "login",
    summary: "",
    parameters: [
      param("Port", port, { Only: { mandatory: true } }),
      param("Token", s("string"), { Only: { mandatory: true } }, { secret: true }),
    ],
    examples: [],
  };
  const prompter = scripted(["x", "2222", "t0k"]);
  const done = await promptForMissing(verb, bound(verb, []), prompter);
  assertEquals(done.values, { Port: 2222, Token: "t0k" });
  assertEquals(prompter.asked, [
    { question: "port (the Port): ", secret: false },
    { question: "--port expects an integer from 1 to 65535; port (the Port): ", secret: false },
    { question: "token (the Token): ", secret: true },
  ]);
  await rejects(
    promptForMissing(verb, bound(verb, []), scripted(["a", "b", "c"])),
    (e: unknown) => e instanceof ParameterBindingError && e.message === "no valid value for --port after 3 tries",
  );
});

// spellings and declarations ------------------------------------------------------------------------

Deno.test("flagOf() kebab-cases PowerShell names unless a flag is given", () => {
  const cases = [
    ["ComputerName", "computer-name"],
    ["SSHTransport", "ssh-transport"],
    ["UseSSL", "use-ssl"],
    ["KeyFilePath", "key-file-path"],
    ["SkipCACheck", "skip-ca-check"],
    ["SkipCNCheck", "skip-cn-check"],
    ["VMId", "vm-id"],
    ["InstanceId", "instance-id"],
  ];
  for (const [name, flag] of cases) strictEqual(flagOf({ name, type: { kind: "string" }, help: "" }), flag);
  strictEqual(flagOf({ name: "RemoteHost", flag: "host", type: { kind: "string" }, help: "" }), "host");
});

Deno.test("setsOf() lists the default set first, then in declaration order", () => {
  assertEquals(setsOf(connectPs), [
    "Name",
    "ComputerName",
    "ConnectionUri",
    "Session",
    "ComputerNameGuid",
    "ConnectionUriGuid",
    "InstanceId",
    "Id",
  ]);
  assertEquals(setsOf({ name: "x", summary: "", parameters: [param("A", s("string"))], examples: [] }), []);
});

Deno.test("resolveParameterSet() merges a parameter declared by two transports", () => {
  const verb: VerbSpec = {
    name: "enter",
    summary: "",
    defaultSet: "SSHHost",
    parameters: [
      param("HostName", s("string"), { SSHHost: { position: 0, mandatory: true } }),
      param("Port", port, { SSHHost: {} }, { short: "p" }),
      param("ComputerName", s("string"), { ComputerName: { mandatory: true } }),
      param("Port", port, { ComputerName: {} }),
    ],
    examples: [],
  };
  strictEqual(bound(verb, ["--computer-name", "w", "-p", "1"]).set, "ComputerName");
  strictEqual(bound(verb, ["h", "-p", "1"]).set, "SSHHost");
});

Deno.test("resolveParameterSet() refuses inconsistent declarations as bugs", () => {
  const twoAtZero: VerbSpec = {
    name: "bad",
    summary: "",
    parameters: [param("A", s("string"), { S: { position: 0 } }), param("B", s("string"), { S: { position: 0 } })],
    examples: [],
  };
  throws(
    () => resolveParameterSet(twoAtZero, []),
    (e: unknown) => e instanceof Error && !(e instanceof UsageError),
  );
  const twoShorts: VerbSpec = {
    name: "bad",
    summary: "",
    parameters: [
      param("A", s("switch"), undefined, { short: "a" }),
      param("B", s("switch"), undefined, { short: "a" }),
    ],
    examples: [],
  };
  throws(() => resolveParameterSet(twoShorts, []), /-a is declared by both A and B/);
});

Deno.test("resolveParameterSet() counts a repeated count flag: -vv, -v -v and --verbose=3", () => {
  const verb: VerbSpec = {
    name: "enter",
    summary: "",
    examples: [],
    parameters: [
      param("HostName", s("string"), { SSHHost: { position: 0, mandatory: true } }),
      param("Verbose", { kind: "count" }, { SSHHost: {} }, { short: "v" }),
      param("Quiet", s("switch"), { SSHHost: {} }, { short: "q" }),
    ],
  };
  assertEquals(resolveParameterSet(verb, ["db1", "-v"]).values.Verbose, 1);
  assertEquals(resolveParameterSet(verb, ["db1", "-vv"]).values.Verbose, 2);
  assertEquals(resolveParameterSet(verb, ["-v", "db1", "-qvv"]).values.Verbose, 3);
  assertEquals(resolveParameterSet(verb, ["db1", "--verbose=3"]).values.Verbose, 3);
  assertEquals(resolveParameterSet(verb, ["db1"]).values.Verbose, undefined);
  throws(() => resolveParameterSet(verb, ["db1", "-qq"]), /--quiet given twice/);
});
