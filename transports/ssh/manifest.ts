import { declareParameters, HOST_SET, SDK_VERSION, type TransportManifest } from "../../plugins/mod.ts";

const ssh = { [HOST_SET]: {} } as const;

/** The SSH transport's parameters, declared once: the manifest publishes them, connection.ts reads them. */
export const parameters = declareParameters([
  {
    name: "Port",
    short: "p",
    type: { kind: "int", min: 1, max: 65535 },
    sets: ssh,
    help: "port to connect to; a port in user@host:port wins",
    default: "22",
  },
  {
    name: "UserName",
    short: "l",
    aliases: ["user"],
    type: { kind: "string" },
    sets: ssh,
    help: "user to log in as; a user in user@host wins",
  },
  {
    name: "KeyFilePath",
    short: "i",
    aliases: ["identity-file-path", "identity-file"],
    type: { kind: "list" },
    sets: ssh,
    help: "private key file to authenticate with (repeatable)",
    valueName: "<file>",
  },
  {
    name: "Subsystem",
    short: "s",
    type: { kind: "string" },
    sets: ssh,
    help: "run this SSH subsystem instead of a shell (e.g. sftp, powershell)",
  },
  {
    name: "ConfigurationName",
    type: { kind: "string" },
    sets: ssh,
    help: "powershell: PowerShell remoting (PSRP) over the host's `powershell` SSH subsystem",
  },
  {
    name: "ConnectingTimeout",
    type: { kind: "duration" },
    sets: ssh,
    help: "give up connecting after this long (ssh's ConnectTimeout)",
  },
  { name: "SSHTransport", type: { kind: "switch" }, sets: ssh, help: "use SSH (the default for a bare host)" },
  {
    name: "Options",
    short: "o",
    type: { kind: "map" },
    sets: ssh,
    help: "an ssh_config option, as ssh -o Key=Value (repeatable)",
    valueName: "<Key=Value>",
  },
  { name: "ConfigFile", short: "F", type: { kind: "string" }, sets: ssh, help: "ssh_config file to read" },
  {
    name: "ProxyJump",
    short: "J",
    type: { kind: "string" },
    sets: ssh,
    help: "connect through these jump hosts: user@jump:port[,next]",
  },
  { name: "ForwardAgent", short: "A", type: { kind: "switch" }, sets: ssh, help: "forward the ssh-agent" },
  {
    name: "SendEnv",
    type: { kind: "list" },
    sets: ssh,
    help: "pass these local environment variables (names or patterns) if the server accepts them",
  },
]);

/** The SSH transport: Enter-PSSession's SSHHost parameter set, spelled as OpenSSH users expect. */
export const manifest: TransportManifest = {
  id: "ssh",
  sdk: SDK_VERSION,
  version: "0.1.0",
  summary: "OpenSSH-compatible SSH (keys, agent, known_hosts, ssh_config, ProxyJump)",
  capabilities: ["shell", "exec", "pty", "pty-resize", "signals", "disconnect", "list", "receive", "remove", "psrp"],
  defaultSet: HOST_SET,
  defaultPort: 22,
  parameters: parameters.specs,
};
