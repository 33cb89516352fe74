/**
 * WinRM message encryption and envelope sizes through the command line, against the WS-Man test
 * server of tests/winrm_server.ts: megabytes of stdin and output over NTLM-sealed http, replies
 * sealed in several parts (MS-WSMV 2.2.9.1.3.2 multipart/x-multi-encrypted), a garbled one, and the
 * host's MaxEnvelopeSizekb read with a WS-Transfer Get or, refused, the 150 KiB default. pywinrm
 * (python3-winrm, the reference client) talks to the same server and reads our framing.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";
import { startWinrmServer, type WinrmServer, type WinrmServerOptions } from "./winrm_server.ts";
import { type RemoteRun, tempHome } from "./run_remote.ts";
import { WinrmClient } from "../transports/winrm/client.ts";
import { resolveSettings } from "../transports/winrm/mod.ts";
import { encryptMultipart } from "../transports/winrm/encryption.ts";
import { NtlmSession } from "../transports/winrm/ntlm.ts";
import {
  child,
  CONFIG_RESOURCE,
  NS,
  parseEnvelope,
  parseFault,
  type XmlElement,
} from "../transports/winrm/wsman_xml.ts";
import { WINDOWS_CMD_COMMANDS } from "../plugins/conformance.ts";

const PASSWORD = "Secr3t-pässword";
const MiB = 1024 * 1024;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** bytes that no run of text or zeros would reproduce by accident */
function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

/** `remote invoke` against `server` with binary stdin; stdout kept as bytes */
async function invoke(
  server: WinrmServer,
  command: string,
  stdin?: Uint8Array,
): Promise<RemoteRun & { out: Uint8Array }> {
  await using home = await tempHome();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      MAIN,
      "invoke",
      "--computer-name",
      "127.0.0.1",
      "--port",
      String(server.port),
      "--credential",
      "WIN01\\alice",
      "--configuration-name",
      "cmd",
      "--",
      command,
    ],
    env: { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD, SSH_AUTH_SOCK: "" },
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  try {
    if (stdin) {
      const w = child.stdin.getWriter();
      // remote may stop reading stdin when it fails
      await w.write(stdin).then(() => w.close()).catch(() => {});
    }
    const r = await child.output();
    const out = new Uint8Array(r.stdout);
    return { code: r.code, stdout: "", out, stderr: new TextDecoder().decode(r.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

async function withServer<T>(opts: WinrmServerOptions, fn: (s: WinrmServer) => Promise<T>): Promise<T> {
  const s = await startWinrmServer(opts);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

Deno.test("remote invoke carries 1 MiB of stdin and 1 MiB of output over NTLM-sealed http byte for byte", async () => {
  await withServer({}, async (server) => {
    const data = noise(MiB);
    const r = await invoke(server, WINDOWS_CMD_COMMANDS.echoStdin, data);
    assertEquals([r.code, r.stderr], [0, ""]);
    assertEquals(server.stats.stdinSha256, [sha256(data)], "the host received stdin intact");
    assertEquals([r.out.length, sha256(r.out)], [MiB, sha256(data)], "the output came back intact");
    assertEquals(server.stats.plainRequests, 0);
  });
});

Deno.test("remote invoke reads 2 MiB of output the host sends as multipart/x-multi-encrypted", async () => {
  // CredSSP's framing (MS-WSMV 2.2.9.1.3.2); before, only the first 16 KiB part of a reply was unsealed
  await withServer({ replyPartSize: 16 * 1024 }, async (server) => {
    const r = await invoke(server, WINDOWS_CMD_COMMANDS.bigOutput(2 * MiB));
    assertEquals([r.code, r.stderr], [0, ""]);
    assertEquals([r.out.length, r.out.every((b) => b === 0)], [2 * MiB, true]);
  });
});

Deno.test("remote invoke over winrm names a garbled multipart reply in one line and exits 244", async () => {
  await withServer({ hostile: { mode: "garbled-multipart", on: "Command" } }, async (server) => {
    const r = await invoke(server, "echo x");
    assertEquals(r.code, 244);
    assertEquals(
      r.stderr,
      `remote: cannot decrypt the reply from 127.0.0.1:${server.port}: ` +
        "encrypted reply is malformed: no boundary (part 2)\n",
    );
    assertEquals(server.shells(), [], "the shell was deleted");
  });
});

Deno.test("remote sizes Sends by the MaxEnvelopeSizekb it reads, and by 150 KiB when the Get is refused", async () => {
  const data = noise(MiB);
  // an administrator reads 500 KiB: Sends grow past what 150 KiB would allow
  const admin = await withServer({ maxEnvelopeSizeKb: 500 }, async (server) => {
    const r = await invoke(server, WINDOWS_CMD_COMMANDS.echoStdin, data);
    assertEquals([r.code, r.stderr, sha256(r.out)], [0, "", sha256(data)]);
    return {
      get: server.stats.byAction.Get,
      sends: server.stats.byAction.Send,
      largest: server.stats.largestRequest,
      sha: server.stats.stdinSha256,
    };
  });
  assertEquals(admin.get, 1, "one WS-Transfer Get of the config resource");
  assertEquals(admin.sha, [sha256(data)]);
  assert(admin.largest > 153_600 && admin.largest <= 500 * 1024, `largest request ${admin.largest}`);
  // anyone else is refused (Access denied) on a host that takes 150 KiB: every request fits, none is 413
  const user = await withServer({ maxEnvelopeSizeKb: 150, notAdmin: true }, async (server) => {
    const r = await invoke(server, WINDOWS_CMD_COMMANDS.echoStdin, data);
    assertEquals([r.code, r.stderr, sha256(r.out)], [0, "", sha256(data)]);
    return {
      get: server.stats.byAction.Get,
      sends: server.stats.byAction.Send,
      largest: server.stats.largestRequest,
      sha: server.stats.stdinSha256,
    };
  });
  assertEquals(user.get, 1);
  assertEquals(user.sha, [sha256(data)]);
  assert(user.largest <= 153_600, `largest request ${user.largest}`);
  assert(user.sends >= Math.ceil(MiB / (150 * 1024 * 3 / 4)), `${user.sends} Sends`);
});

Deno.test("WinrmClient.readMaxEnvelopeSize() reads the host's size once, or keeps 150 KiB when refused", async () => {
  for (
    const [opts, size, sends] of [
      [{ maxEnvelopeSizeKb: 500 }, 512_000, 3],
      [{ maxEnvelopeSizeKb: 500, notAdmin: true }, 153_600, 10],
      [{ maxEnvelopeSizeKb: 8192 }, 512_000, 3],
    ] as const
  ) {
    await withServer(opts, async (server) => {
      const settings = resolveSettings({
        target: { transport: "winrm", host: "127.0.0.1", port: server.port, display: server.url },
        parameters: { ConnectionUri: server.url, Credential: "WIN01\\alice" },
        signal: AbortSignal.timeout(60_000),
        prompt: { interactive: false, ask: () => Promise.resolve(PASSWORD) },
        notice: () => {},
      });
      const client = new WinrmClient({ ...settings, password: PASSWORD });
      try {
        assertEquals(client.maxEnvelopeSize, 153_600);
        assertEquals(await client.readMaxEnvelopeSize(), size);
        assertEquals(await client.readMaxEnvelopeSize(), size);
        assertEquals(server.stats.byAction.Get, 1);
        const shell = await client.createShell({});
        const cmd = await client.command(shell, WINDOWS_CMD_COMMANDS.echoStdin);
        await client.send(shell, cmd, noise(MiB), true);
        assertEquals(server.stats.byAction.Send, sends);
        assert(server.stats.largestRequest <= size, `largest request ${server.stats.largestRequest}`);
        await client.deleteShell(shell);
      } finally {
        client.close();
      }
    });
  }
});

const PYWINRM = `
import sys, json
import winrm
url, user, password, mode, size = sys.argv[1:6]
s = winrm.Session(url, auth=(user, password), transport="ntlm", message_encryption="always")
t = s.protocol.transport
t.build_session()
if mode == "multi":
    # pywinrm seals in 16 KiB parts under multipart/x-multi-encrypted for CredSSP only; its NTLM
    # sealing in that framing is what a client splitting large messages sends
    t.encryption.protocol = "credssp"
text = "x" * int(size)
r = s.run_cmd("echo", [text])
print(json.dumps({"code": r.status_code, "ok": r.std_out.decode() == text + "\\r\\n", "err": r.std_err.decode()}))
`;

/** OpenSSL 3 keeps MD4, which NTLM's NT hash needs, in its legacy provider: pywinrm's ntlm_auth asks for it */
const OPENSSL_LEGACY = "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n" +
  "[provider_sect]\ndefault = default_sect\nlegacy = legacy_sect\n[default_sect]\nactivate = 1\n" +
  "[legacy_sect]\nactivate = 1\n";

async function python(args: string[], stdin?: Uint8Array): Promise<{ code: number; out: string; err: string }> {
  const conf = await Deno.makeTempFile({ prefix: "openssl-legacy-", suffix: ".cnf" });
  await Deno.writeTextFile(conf, OPENSSL_LEGACY);
  const child = new Deno.Command("/usr/bin/python3", {
    args,
    env: { OPENSSL_CONF: conf },
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    if (stdin) {
      const w = child.stdin.getWriter();
      await w.write(stdin);
      await w.close();
    }
    const r = await child.output();
    return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
  } finally {
    clearTimeout(timer);
    await Deno.remove(conf);
  }
}

for (const mode of ["single", "multi"] as const) {
  Deno.test(`the test server takes pywinrm's 40 KB NTLM-sealed Command in ${mode} part framing`, async () => {
    await withServer({}, async (server) => {
      const r = await python(["-c", PYWINRM, server.url, "WIN01\\alice", PASSWORD, mode, "40000"]);
      assertEquals(r.code, 0, r.err);
      assertEquals(JSON.parse(r.out), { code: 0, ok: true, err: "" });
      assert(server.stats.largestRequest > 40_000);
      assertEquals(server.stats.plainRequests, 0);
      assert(mode === "single" ? server.stats.multipartRequests === 0 : server.stats.multipartRequests >= 1);
    });
  });
}

Deno.test("pywinrm's decryption reads a reply sealed by encryptMultipart() in 16 KiB parts", async () => {
  const key = noise(16);
  const plain = new TextEncoder().encode(`<s:Envelope>${"y".repeat(50_000)}</s:Envelope>`);
  const body = encryptMultipart(new NtlmSession(key, "server"), plain);
  const script = `
import sys, types
from ntlm_auth.session_security import SessionSecurity
from winrm.encryption import Encryption
key = bytes.fromhex(sys.argv[1])
flags = 0x40000000 | 0x20000000 | 0x00080000 | 0x20 | 0x10  # KEY_EXCH 128 ESS SEAL SIGN
session = types.SimpleNamespace(auth=types.SimpleNamespace(session_security=SessionSecurity(flags, key, "client")))
enc = Encryption(session, "ntlm")
body = sys.stdin.buffer.read()
sys.stdout.buffer.write(enc._decrypt_response(types.SimpleNamespace(content=body), "win01"))
`;
  const hex = Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("");
  const r = await python(["-c", script, hex], body);
  assertEquals(r.err, "");
  assertEquals(r.out, new TextDecoder().decode(plain));
});

Deno.test("remote invoke over winrm explains a request the host refuses as too large (HTTP 413)", async () => {
  // a host configured below the 150 KiB default that will not say so (the Get is refused)
  await withServer({ maxEnvelopeSizeKb: 64, notAdmin: true }, async (server) => {
    const r = await invoke(server, WINDOWS_CMD_COMMANDS.echoStdin, noise(MiB));
    assertEquals(r.code, 244);
    assertEquals(
      r.stderr,
      `remote: 127.0.0.1:${server.port} refused Send: the request is larger than its MaxEnvelopeSizekb allows ` +
        `(HTTP 413)\nhint: raise MaxEnvelopeSizekb on the host (winrm set winrm/config @{MaxEnvelopeSizekb="500"})\n`,
    );
    assertEquals(server.shells(), [], "the shell was deleted");
  });
});

/** The element tree of cfg:Config in pypsrp's recording against Windows (test_wsman_update_envelope_size_500.yml). */
const RECORDED_CONFIG = "MaxEnvelopeSizekb MaxTimeoutms MaxBatchItems MaxProviderRequests " +
  "Client(NetworkDelayms URLPrefix AllowUnencrypted Auth(Basic Digest Kerberos Negotiate Certificate CredSSP) " +
  "DefaultPorts(HTTP HTTPS) TrustedHosts) " +
  "Service(RootSDDL MaxConcurrentOperations MaxConcurrentOperationsPerUser EnumerationTimeoutms MaxConnections " +
  "MaxPacketRetrievalTimeSeconds AllowUnencrypted Auth(Basic Kerberos Negotiate Certificate CredSSP " +
  "CbtHardeningLevel) DefaultPorts(HTTP HTTPS) IPv4Filter IPv6Filter EnableCompatibilityHttpListener " +
  "EnableCompatibilityHttpsListener CertificateThumbprint AllowRemoteAccess) " +
  "Winrs(AllowRemoteShellAccess IdleTimeout MaxConcurrentUsers MaxShellRunTime MaxProcessesPerShell " +
  "MaxMemoryPerShellMB MaxShellsPerUser)";

const PYWINRM_GET = `
import sys, json, uuid
import winrm
from winrm.exceptions import WinRMTransportError
url, user, password = sys.argv[1:4]
s = winrm.Session(url, auth=(user, password), transport="ntlm", message_encryption="always")
mid = "uuid:" + str(uuid.uuid4()).upper()
# the request of pypsrp's recording
msg = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
       'xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
       '<wsa:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action>'
       '<wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize>'
       '<wsa:MessageID>' + mid + '</wsa:MessageID><wsman:OperationTimeout>PT20S</wsman:OperationTimeout>'
       '<wsa:ReplyTo><wsa:Address s:mustUnderstand="true">'
       'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo>'
       '<wsman:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/config</wsman:ResourceURI>'
       '<wsa:To>' + url + '</wsa:To></s:Header><s:Body /></s:Envelope>')
try:
    text = s.protocol.transport.send_message(msg)
    status = 200
except WinRMTransportError as e:
    text, status = e.response_text, e.code
if isinstance(text, bytes):
    text = text.decode()
print(json.dumps({"status": status, "messageId": mid, "text": text}))
`;

function tree(el: XmlElement): string {
  return el.children.map((c) => (c.children.length ? `${c.name}(${tree(c)})` : c.name)).join(" ");
}

Deno.test("the test server answers pywinrm's Get of the config resource as pypsrp recorded Windows doing", async () => {
  for (const notAdmin of [false, true]) {
    await withServer({ notAdmin }, async (server) => {
      const r = await python(["-c", PYWINRM_GET, server.url, "WIN01\\alice", PASSWORD]);
      assertEquals(r.code, 0, r.err);
      const { status, messageId, text } = JSON.parse(r.out);
      const env = parseEnvelope(text);
      const header = child(env, NS.s, "Header");
      assertEquals(child(header, NS.a, "RelatesTo")?.text, messageId);
      const body = child(env, NS.s, "Body")!;
      if (!notAdmin) {
        assertEquals(status, 200);
        assertEquals(child(header, NS.a, "Action")?.text, "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse");
        const config = child(body, CONFIG_RESOURCE, "Config")!;
        assertEquals(tree(config), RECORDED_CONFIG);
        assertEquals(child(config, CONFIG_RESOURCE, "MaxEnvelopeSizekb")?.text, "500");
      } else {
        assertEquals(status, 500);
        const fault = parseFault(env)!;
        assertEquals([fault.subcode, fault.code, fault.message], ["w:AccessDenied", 5, "Access is denied."]);
      }
    });
  }
});
