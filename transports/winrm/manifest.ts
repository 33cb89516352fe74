import { declareParameters, SDK_VERSION, type TransportManifest } from "../../plugins/mod.ts";
import { BASIC_CHARSETS, DEFAULT_BASIC_CHARSET } from "./basic_charset.ts";

const both = { ComputerName: {}, Uri: {} } as const;

/** The WinRM transport's parameters, declared once: the manifest publishes them, mod.ts reads them. */
export const parameters = declareParameters([
  {
    name: "ComputerName",
    aliases: ["cn"],
    type: { kind: "string" },
    sets: { ComputerName: { position: 0, mandatory: true } },
    help: "Windows host to connect to over WinRM",
  },
  {
    name: "ConnectionUri",
    aliases: ["uri", "cu"],
    type: { kind: "uri" },
    sets: { Uri: { position: 1, mandatory: true } },
    help: "WinRM endpoint URL, e.g. https://win01:5986/wsman",
  },
  {
    name: "Credential",
    type: { kind: "credential" },
    sets: both,
    help: "user (DOMAIN\\user or user@domain); the password is prompted for without echo",
  },
  { name: "Port", type: { kind: "int", min: 1, max: 65535 }, sets: { ComputerName: {} }, help: "WinRM port" },
  { name: "UseSSL", type: { kind: "switch" }, sets: { ComputerName: {} }, help: "use HTTPS (port 5986)" },
  {
    name: "ConfigurationName",
    type: { kind: "string" },
    sets: both,
    help: "PowerShell session configuration (PSRP), e.g. a JEA endpoint; cmd: the WinRS command shell instead",
    default: "Microsoft.PowerShell",
  },
  {
    name: "Authentication",
    type: { kind: "enum", values: ["Default", "Basic", "Negotiate", "Kerberos", "CredSSP"] },
    sets: both,
    help: "Negotiate (NTLM, sealed over http) or Basic (https); Kerberos and CredSSP are not supported yet",
    default: "Negotiate",
  },
  {
    name: "BasicCharset",
    type: { kind: "enum", values: BASIC_CHARSETS },
    sets: both,
    help: "code page of the user name and password with Basic: the host's ANSI code page (Windows decodes " +
      "Basic credentials in it), e.g. windows-1251 for Cyrillic; NTLM always sends Unicode",
    default: DEFAULT_BASIC_CHARSET,
  },
  { name: "AllowRedirection", type: { kind: "switch" }, sets: { Uri: {} }, help: "follow up to 5 redirections" },
  {
    name: "AllowUnencrypted",
    type: { kind: "switch" },
    sets: both,
    help: "allow Basic authentication over plain HTTP",
  },
  { name: "SkipCACheck", type: { kind: "switch" }, sets: both, help: "do not verify the server certificate's CA" },
  { name: "SkipCNCheck", type: { kind: "switch" }, sets: both, help: "do not verify the certificate's host name" },
  {
    name: "OperationTimeout",
    type: { kind: "duration" },
    sets: both,
    help: "how long the host may hold a reply (each Receive long poll); replies get this plus up to 10s",
    default: "20s",
  },
  {
    name: "MaxRetryConnectionTime",
    type: { kind: "duration" },
    sets: both,
    help: "how long a PowerShell session keeps reconnecting after the connection breaks (0: give up at once)",
    default: "4m",
  },
]);

/** The WinRM transport: Enter-PSSession's ComputerName and Uri parameter sets. */
export const manifest: TransportManifest = {
  id: "winrm",
  sdk: SDK_VERSION,
  version: "0.1.0",
  summary: "Windows Remote Management (WS-Man): PowerShell remoting (PSRP) or WinRS cmd; Basic, NTLM, HTTPS",
  schemes: ["http", "https"],
  capabilities: ["shell", "exec", "signals", "psrp", "list", "disconnect", "receive", "remove"],
  powershell: { default: "Microsoft.PowerShell", native: ["cmd"] },
  defaultSet: "ComputerName",
  defaultPort: 5985,
  parameters: parameters.specs,
};
