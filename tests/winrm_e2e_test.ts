// End-to-end tests of the winrm transport against tests/winrm_server.ts (a scripted WS-Man host).
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import type { Channel, ExitStatus, OpenContext } from "../plugins/mod.ts";
import { RemoteError } from "../plugins/mod.ts";
import { open, openWith, PASSWORD_ENV, resolveSettings } from "../transports/winrm/mod.ts";
import { WinrmClient, WinrmFaultError } from "../transports/winrm/client.ts";
import {
  Action,
  buildEnvelope,
  child,
  commandBody,
  NS,
  parseCommandResponse,
  parseCreateResponse,
  parseEnvelope,
  parseReceiveResponse,
  receiveBody,
  type XmlElement,
} from "../transports/winrm/wsman_xml.ts";
import { startWinrmServer, type WinrmServer, type WinrmServerOptions } from "./winrm_server.ts";

const PASSWORD = "Secr3t-pässword";
const enc = new TextEncoder();

function ctxFor(server: WinrmServer, params: Record<string, unknown> = {}, password = PASSWORD): OpenContext & {
  asked: string[];
} {
  const asked: string[] = [];
  return {
    asked,
    target: { transport: "winrm", host: "127.0.0.1", port: server.port, display: server.url },
    parameters: { ConnectionUri: server.url, Credential: "WIN01\\alice", ...params },
    signal: AbortSignal.timeout(60_000),
    prompt: {
      interactive: true,
      ask: (q: string, o?: { secret?: boolean }) => {
        asked.push(`${q}${o?.secret ? " (secret)" : ""}`);
        return Promise.resolve(password);
      },
    },
    notice: () => {},
  };
}

async function text(s: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(s).text();
}

async function run(ch: Channel): Promise<{ stdout: string; stderr: string; exit: ExitStatus }> {
  const [stdout, stderr, exit] = await Promise.all([text(ch.stdout), text(ch.stderr), ch.exit]);
  return { stdout, stderr, exit };
}

async function withServer(opts: WinrmServerOptions, fn: (s: WinrmServer) => Promise<void>): Promise<void> {
  const s = await startWinrmServer(opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

function httpsClient(s: WinrmServer, params: Record<string, unknown> = {}): WinrmClient {
  const settings = resolveSettings(ctxFor(s, { Authentication: "Basic", ...params }));
  return new WinrmClient({
    ...settings,
    password: PASSWORD,
    tls: { verifyCa: true, verifyHost: true, ca: [s.caPem!] },
  });
}

Deno.test("winrm invoke over http runs ipconfig with NTLM sealing and deletes the shell", async () => {
  await withServer({}, async (s) => {
    const ctx = ctxFor(s);
    await using ch = await open(ctx, { kind: "exec", command: "ipconfig" });
    const r = await run(ch);
    assert(r.stdout.includes("Windows IP Configuration"), r.stdout);
    assertEquals(r.stderr, "");
    assertEquals(r.exit, { kind: "exited", code: 0 });
    assertEquals(ctx.asked, ["Password for WIN01\\alice@127.0.0.1:  (secret)"]);
    assertEquals(s.stats.plainRequests, 0);
    assert(s.stats.encryptedRequests >= 4);
    assertEquals(s.shells(), []);
    assertEquals(s.stats.byAction.Create, 1);
    assertEquals(s.stats.byAction.Delete, 1);
    assertEquals(s.stats.byAction.Signal, undefined);
  });
});

Deno.test("winrm invoke over https with Basic trusts the CA and keeps stdout and stderr apart", async () => {
  await withServer({ https: true }, async (s) => {
    const client = httpsClient(s);
    await using ch = await openWith(
      client,
      AbortSignal.timeout(30_000),
      { kind: "exec", command: "notacommand /x" },
      "notacommand /x",
    );
    const r = await run(ch);
    assertEquals(r.stdout, "");
    assertEquals(
      r.stderr,
      "'notacommand' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n",
    );
    assertEquals(r.exit, { kind: "exited", code: 9009 });
    assertEquals(s.stats.handshakes, 0);
    assertEquals(s.shells(), []);
  });
});

Deno.test("winrm runs NTLM over https with channel bindings and no message sealing", async () => {
  await withServer({ https: true }, async (s) => {
    const client = httpsClient(s, { Authentication: "Negotiate" });
    await using ch = await openWith(
      client,
      AbortSignal.timeout(30_000),
      { kind: "exec", command: "echo tls" },
      "echo tls",
    );
    assertEquals((await run(ch)).stdout, "tls\r\n");
    assertEquals(s.stats.encryptedRequests, 0);
    assert(s.stats.handshakes >= 1);
  });
});

Deno.test("winrm over https refuses an untrusted certificate unless --skip-ca-check", async () => {
  await withServer({ https: true }, async (s) => {
    const err = await open(ctxFor(s, { Authentication: "Basic" }), { kind: "exec", command: "echo x" }).then(
      () => undefined,
      (e) => e,
    );
    assert(err instanceof RemoteError);
    assert(/certificate of 127\.0\.0\.1:\d+ is not trusted/.test(err.message), err.message);
    assert(err.hint?.includes("--skip-ca-check"));
    await using ch = await open(ctxFor(s, { Authentication: "Basic", SkipCACheck: true }), {
      kind: "exec",
      command: "echo ok",
    });
    assertEquals((await run(ch)).stdout, "ok\r\n");
  });
});

Deno.test("winrm sends stdin with Send and closes it with End", async () => {
  await withServer({}, async (s) => {
    await using ch = await open(ctxFor(s), { kind: "exec", command: "type con" });
    const out = text(ch.stdout);
    const w = ch.stdin.getWriter();
    await w.write(enc.encode("first line\r\n"));
    await w.write(enc.encode("zweite Zeile ü\r\n"));
    await w.close();
    assertEquals(await out, "first line\r\nzweite Zeile ü\r\n");
    assertEquals(await ch.exit, { kind: "exited", code: 0 });
    assertEquals(s.shells(), []);
  });
});

Deno.test("winrm passes unicode output through code page 65001", async () => {
  await withServer({}, async (s) => {
    await using ch = await open(ctxFor(s), { kind: "exec", command: "echo héllo ✓ 世界 🎉" });
    assertEquals((await run(ch)).stdout, "héllo ✓ 世界 🎉\r\n");
    await using cp = await open(ctxFor(s), { kind: "exec", command: "chcp" });
    assertEquals((await run(cp)).stdout, "Active code page: 65001\r\n");
  });
});

Deno.test("winrm passes the environment and a non-zero exit code", async () => {
  await withServer({}, async (s) => {
    await using ch = await open(ctxFor(s), { kind: "exec", command: "set GREETING", env: { GREETING: "a&b<c>" } });
    assertEquals((await run(ch)).stdout, "GREETING=a&b<c>\r\n");
    await using ex = await open(ctxFor(s), { kind: "exec", command: "exit /b 42" });
    assertEquals((await run(ex)).exit, { kind: "exited", code: 42 });
  });
});

Deno.test("winrm sends ctrl_c as a signal while Receive is pending", async () => {
  await withServer({}, async (s) => {
    await using ch = await open(ctxFor(s), { kind: "exec", command: "ping -t 127.0.0.1" });
    const reader = ch.stdout.getReader();
    let seen = "";
    while (!seen.includes("Reply from")) seen += new TextDecoder().decode((await reader.read()).value);
    await ch.signal!("INT");
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    assert(seen.includes("Control-C"));
    assertEquals(await ch.exit, { kind: "signaled", signal: "INT", code: 130 });
    assertEquals(s.stats.signals, ["ctrl_c"]);
    assert(s.stats.connections >= 2, "signal went over a second connection");
    assertEquals(s.shells(), []);
  });
});

Deno.test("winrm polls Receive again after w:TimedOut", async () => {
  await withServer({}, async (s) => {
    await using ch = await open(ctxFor(s, { OperationTimeout: 1000 }), { kind: "exec", command: "timeout /t 3" });
    assertEquals((await run(ch)).exit, { kind: "exited", code: 0 });
    assert(s.stats.timedOut >= 1, `timed out ${s.stats.timedOut} times`);
  });
});

Deno.test("winrm reports the invalid-selectors fault with its WSManFault code", async () => {
  await withServer({ https: true }, async (s) => {
    const client = httpsClient(s);
    try {
      const shell = await client.createShell({});
      await client.deleteShell(shell);
      const err = await client.command(shell, "echo x").then(() => undefined, (e) => e);
      assert(err instanceof WinrmFaultError);
      assertEquals(err.fault.code, 2150858843);
      assert(err.message.includes("no longer knows the shell"), err.message);
      assert(err.message.includes("WSManFault 2150858843"), err.message);
      assertEquals(err.exitCode, 251);
    } finally {
      client.close();
    }
  });
});

/** one unsealed request (Basic over http) and the parsed reply, to compare the server with captures */
async function rawPost(
  s: WinrmServer,
  action: string,
  body: string,
  selectors?: Record<string, string>,
): Promise<{ status: number; env: XmlElement; messageId: string; bytes: number }> {
  const messageId = `uuid:${crypto.randomUUID().toUpperCase()}`;
  const soap = buildEnvelope({
    action,
    to: s.url,
    messageId,
    sessionId: "uuid:0",
    operationTimeout: "PT1S",
    selectors,
    body,
  });
  const r = await fetch(s.url, {
    method: "POST",
    headers: {
      Authorization: `Basic ${btoa(`alice:${PASSWORD}`)}`, // Latin-1, as windows-1252 has it
      "Content-Type": "application/soap+xml;charset=UTF-8",
    },
    body: soap,
  });
  const text = await r.text();
  return { status: r.status, env: parseEnvelope(text), messageId, bytes: new TextEncoder().encode(text).length };
}

const path = (el: XmlElement | undefined, ...steps: [string, string][]) =>
  steps.reduce<XmlElement | undefined>((e, [ns, name]) => child(e, ns, name), el);

Deno.test("the test server answers an unknown CommandId as Windows does (pypsrp test_winrs_bad_cmd_id.yml)", async () => {
  await withServer({ allowUnencrypted: true }, async (s) => {
    const created = await rawPost(s, Action.create, "<rsp:Shell/>");
    const shellId = parseCreateResponse(created.env);
    const r = await rawPost(s, Action.receive, receiveBody("87E77BEB-6761-4C48-9D70-A00266B8459A"), {
      ShellId: shellId,
    });
    assertEquals(r.status, 500);
    const fault = path(r.env, [NS.s, "Body"], [NS.s, "Fault"]);
    assertEquals(path(fault, [NS.s, "Code"], [NS.s, "Value"])?.text, "s:Sender");
    assertEquals(path(fault, [NS.s, "Code"], [NS.s, "Subcode"], [NS.s, "Value"])?.text, "w:InvalidSelectors");
    assertEquals(
      path(fault, [NS.s, "Detail"], [NS.w, "FaultDetail"])?.text,
      "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
    );
    assertEquals(path(fault, [NS.s, "Detail"], [NS.f, "WSManFault"])?.attrs.Code, "2150858843");
    assertEquals(path(r.env, [NS.s, "Header"], [NS.a, "RelatesTo"])?.text, r.messageId);
  });
});

Deno.test("the test server answers the shell quota as Windows does (WinRb wmi_error_v2.xml)", async () => {
  await withServer({ allowUnencrypted: true, maxShellsPerUser: 0 }, async (s) => {
    const r = await rawPost(s, Action.create, "<rsp:Shell/>");
    assertEquals(r.status, 500);
    const fault = path(r.env, [NS.s, "Body"], [NS.s, "Fault"]);
    assertEquals(path(fault, [NS.s, "Code"], [NS.s, "Value"])?.text, "s:Sender");
    assertEquals(path(fault, [NS.s, "Code"], [NS.s, "Subcode"], [NS.s, "Value"])?.text, "w:QuotaLimit");
    const wmi = path(fault, [NS.s, "Detail"], [NS.wmiError, "MSFT_WmiError"]);
    assertEquals(child(wmi, NS.wmiError, "error_Code")?.text, "2150859173");
    assertEquals(child(wmi, NS.wmiError, "MessageID")?.text, "HRESULT 0x803381a5");
    assertEquals(path(fault, [NS.s, "Detail"], [NS.f, "WSManFault"]), undefined);
    assertEquals(path(r.env, [NS.s, "Header"], [NS.a, "RelatesTo"]), undefined);
  });
});

Deno.test("the test server keeps each ReceiveResponse within the MaxEnvelopeSize asked for", async () => {
  await withServer({ allowUnencrypted: true }, async (s) => {
    const shellId = parseCreateResponse((await rawPost(s, Action.create, "<rsp:Shell/>")).env);
    const n = 600_000;
    const cmd = await rawPost(
      s,
      Action.command,
      commandBody(
        `powershell.exe -NoProfile -NonInteractive -Command "[Console]::OpenStandardOutput().Write([byte[]]::new(${n}), 0, ${n})"`,
      ),
      { ShellId: shellId },
    );
    const commandId = parseCommandResponse(cmd.env);
    let got = 0;
    let receives = 0;
    for (;;) {
      const r = await rawPost(s, Action.receive, receiveBody(commandId), { ShellId: shellId });
      receives++;
      assert(r.bytes <= 153_600, `a reply of ${r.bytes} bytes`);
      const result = parseReceiveResponse(r.env, commandId);
      for (const c of result.chunks) got += c.data.length;
      if (result.done) break;
    }
    assertEquals(got, n);
    assert(receives >= 5, `${receives} receives`);
  });
});

Deno.test("winrm reports a Receive for a command the host does not know as invalid selectors", async () => {
  await withServer({ https: true }, async (s) => {
    const client = httpsClient(s);
    try {
      const shell = await client.createShell({});
      const err = await client.receive(shell, "87E77BEB-6761-4C48-9D70-A00266B8459A").then(() => undefined, (e) => e);
      assert(err instanceof WinrmFaultError, String(err));
      assertEquals(err.fault.code, 2150858843);
      assert(err.message.includes("no longer knows the shell or command"), err.message);
      assert(err.message.includes("command identifier that does not exist"), err.message);
      assertEquals(err.exitCode, 251);
      await client.deleteShell(shell);
    } finally {
      client.close();
    }
  });
});

Deno.test("winrm explains the shell quota and access-denied faults", async () => {
  await withServer({ maxShellsPerUser: 0 }, async (s) => {
    const err = await open(ctxFor(s), { kind: "exec", command: "echo x" }).then(() => undefined, (e) => e);
    assert(err instanceof WinrmFaultError);
    assert(
      /shell quota is used up \(MSFT_WmiError 2150859173, 0x803381a5\): .*maximum number of 0 concurrent shells/.test(
        err.message,
      ),
      err.message,
    );
    assertEquals(err.exitCode, 251);
  });
  await withServer({ denyAccess: true }, async (s) => {
    const err = await open(ctxFor(s), { kind: "exec", command: "echo x" }).then(() => undefined, (e) => e);
    assert(err instanceof WinrmFaultError);
    assert(err.message.includes("denied access to Create"), err.message);
    assertEquals(err.exitCode, 245);
  });
});

Deno.test("winrm rejects a wrong password with an auth error, for NTLM and Basic", async () => {
  await withServer({}, async (s) => {
    const err = await open(ctxFor(s, {}, "wrong"), { kind: "exec", command: "echo x" }).then(() => undefined, (e) => e);
    assert(err instanceof RemoteError);
    assertEquals(err.message, "access denied for WIN01\\alice at 127.0.0.1:" + s.port);
    assertEquals(err.exitCode, 245);
    assert(!err.message.includes("wrong"));
  });
  await withServer({ https: true }, async (s) => {
    const client = new WinrmClient({
      ...resolveSettings(ctxFor(s, { Authentication: "Basic" })),
      password: "wrong",
      tls: { verifyCa: true, verifyHost: true, ca: [s.caPem!] },
    });
    const err = await client.createShell({}).then(() => undefined, (e) => e);
    client.close();
    assert(err instanceof RemoteError);
    assertEquals(err.exitCode, 245);
  });
});

for (const mode of ["doctype", "entity-bomb", "garbage", "truncated", "bad-relates-to"] as const) {
  Deno.test(`winrm refuses a ${mode} reply with a protocol error`, async () => {
    await withServer({ hostile: { mode, on: "Create" } }, async (s) => {
      const err = await open(ctxFor(s), { kind: "exec", command: "echo x" }).then(() => undefined, (e) => e);
      assert(err instanceof RemoteError, String(err));
      assertEquals(err.exitCode, 244, err.message);
      const expected = {
        doctype: /bad reply to Create .*DOCTYPE.*refused/,
        "entity-bomb": /bad reply to Create .*DOCTYPE.*refused/,
        garbage: /bad reply to Create .*not well-formed/,
        truncated: /Create to 127\.0\.0\.1:\d+ failed: the reply was cut short/,
        "bad-relates-to": /bad reply to Create .*relates to uuid:0000/,
      }[mode];
      assert(expected.test(err.message), err.message);
    });
  });
}

Deno.test("winrm gives up on a server that never answers, in bounded time", async () => {
  await withServer({ hostile: { mode: "silent", on: "Receive" } }, async (s) => {
    await using ch = await open(ctxFor(s, { OperationTimeout: 1000 }), { kind: "exec", command: "echo x" });
    const exit = await ch.exit;
    assertEquals(exit.kind, "lost");
    const error = (exit as { error: Error }).error;
    assert(error instanceof RemoteError);
    assert(/did not answer Receive within 3s/.test(error.message), error.message);
    assertEquals(error.exitCode, 242);
    assertEquals(s.shells(), [], "the shell was deleted on another connection");
  });
});

Deno.test("winrm refuses Basic over http without --allow-unencrypted, and Kerberos", async () => {
  await withServer({ allowUnencrypted: true }, async (s) => {
    await rejects(
      open(ctxFor(s, { Authentication: "Basic" }), { kind: "exec", command: "echo x" }),
      /password and all traffic in clear/,
    );
    await rejects(
      open(ctxFor(s, { Authentication: "Kerberos" }), { kind: "exec", command: "echo x" }),
      /Kerberos authentication is not supported yet/,
    );
    await using ch = await open(ctxFor(s, { Authentication: "Basic", AllowUnencrypted: true }), {
      kind: "exec",
      command: "echo clear",
    });
    assertEquals((await run(ch)).stdout, "clear\r\n");
  });
});

Deno.test("winrm follows redirections only with --allow-redirection", async () => {
  await withServer({}, async (target) => {
    await withServer({ redirectTo: target.url }, async (s) => {
      await rejects(
        open(ctxFor(s), { kind: "exec", command: "echo x" }),
        (e: RemoteError) => e.hint === "pass --allow-redirection to follow it",
      );
      await using ch = await open(ctxFor(s, { AllowRedirection: true }), { kind: "exec", command: "echo moved" });
      assertEquals((await run(ch)).stdout, "moved\r\n");
      assertEquals(target.shells(), []);
    });
  });
});

Deno.test("winrm takes the password from REMOTE_WINRM_PASSWORD without prompting", async () => {
  await withServer({}, async (s) => {
    Deno.env.set(PASSWORD_ENV, PASSWORD);
    try {
      const ctx = ctxFor(s, {}, "not this one");
      await using ch = await open(ctx, { kind: "exec", command: "echo env" });
      assertEquals((await run(ch)).stdout, "env\r\n");
      assertEquals(ctx.asked, []);
    } finally {
      Deno.env.delete(PASSWORD_ENV);
    }
  });
});

Deno.test("winrm runs a powershell command with --configuration-name powershell", async () => {
  await withServer({}, async (s) => {
    await using ch = await open(ctxFor(s, { ConfigurationName: "powershell" }), {
      kind: "exec",
      command: "Write-Output 'from ps'",
    });
    assertEquals((await run(ch)).stdout, "from ps\r\n");
  });
});

Deno.test("winrm interactive shell edits lines locally, hides cmd's echo and sends Ctrl-C as a signal", async () => {
  await withServer({}, async (s) => {
    const pty = { columns: 80, rows: 24, term: "xterm" };
    await using ch = await open(ctxFor(s), { kind: "shell", pty });
    assertEquals(await text(ch.stderr), "");
    const reader = ch.stdout.getReader();
    let screen = "";
    const until = async (needle: string) => {
      while (!screen.includes(needle)) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`stream ended before ${JSON.stringify(needle)}: ${JSON.stringify(screen)}`);
        screen += new TextDecoder().decode(value);
      }
    };
    await until("C:\\Users\\alice>");
    const w = ch.stdin.getWriter();
    await w.write(enc.encode("echo hellp\x7fo\r"));
    await until("hello\r\n\r\nC:\\Users\\alice>");
    assert(
      screen.endsWith("C:\\Users\\alice>echo hellp\b \bo\r\nhello\r\n\r\nC:\\Users\\alice>"),
      JSON.stringify(screen),
    );
    await w.write(enc.encode("ping -t 127.0.0.1\r"));
    await until("Reply from");
    await w.write(enc.encode("\x03"));
    await until("Control-C");
    await until("\r\nC:\\Users\\alice>");
    await w.write(enc.encode("exit\r"));
    for (;;) if ((await reader.read()).done) break;
    assertEquals(await ch.exit, { kind: "exited", code: 0 });
    assert(s.stats.signals.includes("ctrl_c"));
    assertEquals(s.shells(), []);
  });
});

Deno.test("winrm deletes the shell when the channel is disposed mid-command", async () => {
  await withServer({}, async (s) => {
    const ch = await open(ctxFor(s), { kind: "exec", command: "timeout /t 30" });
    assertEquals(s.shells().length, 1);
    await ch[Symbol.asyncDispose]();
    assertEquals(s.shells(), []);
    assertEquals((await ch.exit).kind, "lost");
  });
});
