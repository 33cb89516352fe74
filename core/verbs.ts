/**
 * The verbs' declarations: usage, summary, parameter sets and examples, as data. Transport
 * parameters join the connecting verbs from the manifests, so a plugin's options appear in help,
 * completions and binding like the built-ins'.
 *
 * @module
 */
import { HOST_SET, type ParameterSpec, type TransportManifest } from "../plugins/mod.ts";
import type { VerbSpec } from "./parameter_set.ts";

const selectorSets = {
  Id: { position: 0, mandatory: true },
} as const;

/** The target of `enter`, `new`, `invoke`: transport-neutral, in the SSH set that is the default. */
function hostNameParameter(set: string, list: boolean): ParameterSpec {
  return {
    name: "HostName",
    aliases: ["host"],
    type: list ? { kind: "list" } : { kind: "string" },
    sets: { [set]: { position: 0, mandatory: !list } },
    help: list
      ? "targets, each [scheme://][user@]host[:port]; a scheme picks the transport (ssh is the default)"
      : "target [scheme://][user@]host[:port]; a scheme picks the transport (ssh is the default)",
    valueName: "<[user@]host[:port]>",
  };
}

/** ssh's -e: the escape character of the terminal bridge. */
const escapeCharParameter: ParameterSpec = {
  name: "EscapeChar",
  short: "e",
  type: { kind: "string" },
  help: "escape character of the session (one character, ^X, or none), as ssh -e",
  default: "~",
  valueName: "<char>",
};

const idParameter: ParameterSpec = {
  name: "Id",
  type: { kind: "int", min: 1 },
  sets: { Id: selectorSets.Id },
  help: "the session's local Id, as `remote get` shows it",
};
const instanceIdParameter: ParameterSpec = {
  name: "InstanceId",
  type: { kind: "guid" },
  sets: { InstanceId: { mandatory: true } },
  help: "the session's InstanceId (a GUID)",
};
const sessionNameParameter: ParameterSpec = {
  name: "Name",
  type: { kind: "string" },
  sets: { Name: { mandatory: true } },
  help: "the session's name",
};

/** Transport parameters, with every set renamed to `set` when given (verbs with one connecting set). */
function transportParameters(manifests: readonly TransportManifest[], set?: string): ParameterSpec[] {
  const byName = new Map<string, ParameterSpec>();
  for (const manifest of manifests) {
    for (const parameter of manifest.parameters) {
      const sets = set ? { [set]: {} } : parameter.sets;
      const known = byName.get(parameter.name);
      if (known) {
        // Same name in two transports (Port, Credential…): one option, in the union of their sets.
        byName.set(parameter.name, { ...known, sets: { ...known.sets, ...sets } });
      } else {
        byName.set(parameter.name, { ...parameter, sets });
      }
    }
  }
  return [...byName.values()];
}

/** All verbs, given the manifests of the transports known to this run. */
export function verbSpecs(manifests: readonly TransportManifest[]): VerbSpec[] {
  // The target set has one name whatever the default transport: a bare target is routed after binding
  // (scheme, then the user's host mapping, then the default transport), so binding need not know it.
  const hostSet = HOST_SET;
  const connecting = transportParameters(manifests);
  const jsonSwitch: ParameterSpec = { name: "Json", type: { kind: "switch" }, help: "print JSON instead of a table" };
  return [
    {
      name: "enter",
      summary: "Starts an interactive session with a remote computer (Enter-PSSession)",
      defaultSet: hostSet,
      parameters: [
        hostNameParameter(hostSet, false),
        ...connecting,
        idParameter,
        instanceIdParameter,
        sessionNameParameter,
        escapeCharParameter,
      ],
      examples: [
        { command: "remote enter", description: "a shell on this computer (the local transport)" },
        { command: "remote enter admin@db1", description: "a shell on db1 over SSH" },
        {
          command: "remote enter --computer-name win01 --credential CORP\\admin",
          description: "cmd on win01 over WinRM",
        },
        { command: "remote enter --target i-0123456789abcdef0", description: "a shell through AWS Session Manager" },
        { command: "remote enter --name ITTask", description: "attach to the persistent session ITTask" },
      ],
    },
    {
      name: "new",
      summary: "Creates a persistent session on a remote computer and leaves it running (New-PSSession)",
      defaultSet: hostSet,
      parameters: [
        hostNameParameter(hostSet, false),
        ...connecting,
        { name: "Name", type: { kind: "string" }, help: "the session's name (default: Session<N>)" },
      ],
      examples: [{ command: "remote new db1 --name ITTask", description: "a session named ITTask on db1" }],
    },
    {
      name: "get",
      summary: "Lists sessions: the local registry merged with what the hosts report (Get-PSSession)",
      parameters: [
        {
          name: "ComputerName",
          aliases: ["cn"],
          type: { kind: "list" },
          help: "also ask these hosts for their sessions",
        },
        { name: "Name", type: { kind: "string" }, help: "only sessions whose name matches this pattern (* and ?)" },
        { name: "Id", type: { kind: "int", min: 1 }, help: "only the session with this Id" },
        { name: "InstanceId", type: { kind: "guid" }, help: "only the session with this InstanceId" },
        {
          name: "State",
          type: { kind: "enum", values: ["Opened", "Disconnected", "Broken", "Closed"] },
          help: "only sessions in this state",
        },
        ...transportParameters(manifests.filter((m) => m.capabilities.includes("list")), "__AllParameterSets")
          .filter((p) => p.name !== "ComputerName")
          .map((p) => ({ ...p, sets: undefined })),
        jsonSwitch,
      ],
      examples: [
        { command: "remote get", description: "sessions this computer knows" },
        { command: "remote get --computer-name db1 --json", description: "db1's sessions, as JSON" },
      ],
    },
    {
      name: "connect",
      summary: "Reconnects to a disconnected session and attaches to it (Connect-PSSession)",
      defaultSet: "Name",
      parameters: [
        { ...sessionNameParameter, sets: { Name: { mandatory: true }, ComputerName: {} } },
        {
          name: "ComputerName",
          aliases: ["cn"],
          type: { kind: "string" },
          sets: { ComputerName: { position: 0, mandatory: true } },
          help: "discover the session on this host ([user@]host[:port]) rather than in the local registry",
        },
        idParameter,
        instanceIdParameter,
        ...transportParameters(
          manifests.filter((m) => m.capabilities.includes("disconnect")),
          "ComputerName",
        ).filter((p) => p.name !== "ComputerName"),
        { name: "Force", type: { kind: "switch" }, help: "take over a session another client is attached to" },
        escapeCharParameter,
      ],
      examples: [
        { command: "remote connect --name ITTask", description: "attach again to ITTask" },
        {
          command: "remote connect --computer-name db1 --name ITTask",
          description: "find ITTask on db1 from another computer and attach",
        },
      ],
    },
    {
      name: "disconnect",
      summary: "Detaches every client from a session and leaves it running (Disconnect-PSSession)",
      defaultSet: "Name",
      parameters: [
        sessionNameParameter,
        idParameter,
        instanceIdParameter,
        {
          name: "IdleTimeout",
          type: { kind: "duration" },
          help: "end the session on the host after it has been idle this long (e.g. 15h)",
        },
        {
          name: "OutputBufferingMode",
          type: { kind: "enum", values: ["block", "drop"] },
          help: "what happens to output while disconnected (see docs/sessions.md)",
        },
      ],
      examples: [{ command: "remote disconnect --name ITTask --idle-timeout 15h", description: "detach, keep 15h" }],
    },
    {
      name: "receive",
      summary: "Prints the output a disconnected session produced, without attaching (Receive-PSSession)",
      defaultSet: "Name",
      parameters: [sessionNameParameter, idParameter, instanceIdParameter],
      examples: [{ command: "remote receive --name ITTask", description: "what ITTask printed since the detach" }],
    },
    {
      name: "remove",
      summary: "Ends a session and every process in it (Remove-PSSession)",
      defaultSet: "Name",
      parameters: [
        sessionNameParameter,
        idParameter,
        instanceIdParameter,
        { name: "WhatIf", type: { kind: "switch" }, help: "show what would be removed, remove nothing" },
        { name: "Confirm", type: { kind: "switch" }, help: "ask before removing each session" },
      ],
      examples: [{ command: "remote remove --name ITTask", description: "end ITTask on its host" }],
    },
    {
      name: "invoke",
      summary: "Runs a command on one or many computers (Invoke-Command)",
      defaultSet: hostSet,
      parameters: [
        hostNameParameter(hostSet, true),
        ...connecting,
        {
          name: "HostFile",
          type: { kind: "string" },
          help: "read targets from this file, one per line (- for stdin)",
          valueName: "<file>",
        },
        {
          name: "ThrottleLimit",
          type: { kind: "int", min: 1, max: 1024 },
          help: "run on at most this many hosts at once",
          default: "32",
        },
        jsonSwitch,
        { name: "NoReuse", type: { kind: "switch" }, help: "open a new connection rather than reuse a master" },
        {
          name: "InDisconnectedSession",
          type: { kind: "switch" },
          help: "start the command in a new persistent session on each host and return at once (see remote receive)",
        },
        {
          name: "SessionName",
          type: { kind: "string" },
          help: "with --in-disconnected-session: the sessions' name (default: Session<N>)",
        },
      ],
      remainder: {
        name: "Command",
        help: "the command to run, after --",
        mandatorySets: [...new Set([hostSet, ...connecting.flatMap((p) => Object.keys(p.sets ?? {}))])],
      },
      examples: [
        { command: "remote invoke db1 db2 -- uptime", description: "uptime on two hosts" },
        { command: "remote invoke --computer-name win01 -- ipconfig", description: "ipconfig over WinRM" },
        {
          command: "remote invoke db1 db2 --in-disconnected-session -- ./nightly.sh",
          description: "start a long job in a session on each host; collect it later with remote receive",
        },
      ],
    },
    {
      name: "forward",
      summary: "Forwards a local port to a port on or near the target (Start-SSMSession port forwarding)",
      defaultSet: hostSet,
      parameters: [
        { ...hostNameParameter(hostSet, false), aliases: [], sets: { [hostSet]: { position: 0 } } },
        ...connecting,
        {
          name: "LocalPort",
          type: { kind: "int", min: 0, max: 65535 },
          help: "local port to listen on (0 picks a free one)",
        },
        {
          name: "RemotePort",
          type: { kind: "int", min: 1, max: 65535 },
          help: "port to reach on the far side",
        },
        {
          name: "RemoteHost",
          flag: "host",
          type: { kind: "string" },
          help: "reach this host as seen from the target instead of the target itself",
        },
      ],
      examples: [{
        command: "remote forward --target i-0123456789abcdef0 --local-port 8080 --remote-port 80",
        description: "localhost:8080 reaches port 80 of the instance",
      }],
    },
  ];
}

/** The verbs that take no parameter sets, for help and completions. */
export const SIMPLE_VERBS = ["help", "completions", "plugin", "version"] as const;
