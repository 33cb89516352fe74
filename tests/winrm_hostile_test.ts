/**
 * A hostile or broken WinRM host, through the command line: floods, endless headers, replies of
 * nothing but elements, and well-formed replies that lack what they must carry. Each ends with exit
 * 244 and a one-line message, in bounded memory, before the flood is over. The peer is the WS-Man
 * server of tests/winrm_server.ts in its hostile modes.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startWinrmServer, type WinrmServerOptions, type WinrmServerStats } from "./winrm_server.ts";
import { type RemoteRun, runRemote, tempHome } from "./run_remote.ts";

const PASSWORD = "Secr3t-pässword";
const HINT = "hint: the host does not answer as a WinRM service does; check the address and port, " +
  "and any proxy in between\n";

async function invokeAgainst(
  opts: WinrmServerOptions,
): Promise<{ run: RemoteRun; where: string; stats: WinrmServerStats; shells: string[] }> {
  const server = await startWinrmServer(opts);
  try {
    await using home = await tempHome();
    const port = String(server.port);
    const run = await runRemote(
      // the WinRS command shell: its Create/Command/Receive replies are the ones made hostile here
      [
        "invoke",
        "--computer-name",
        "127.0.0.1",
        "--port",
        port,
        "--credential",
        "WIN01\\alice",
        "--configuration-name",
        "cmd",
        "--",
        "echo",
        "x",
      ],
      { env: { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD }, timeoutMs: 60_000 },
    );
    return { run, where: `127.0.0.1:${port}`, stats: server.stats, shells: server.shells() };
  } finally {
    await server.close();
  }
}

Deno.test("remote invoke over winrm refuses a reply without a length past 64 KiB before authentication", async () => {
  const { run, where, stats } = await invokeAgainst({ hostile: { mode: "flood-no-length", on: "auth" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: Create to ${where} failed: the reply is larger than 64 KiB\n${HINT}`,
  });
  assertEquals(stats.flood?.finished, false, `the flood ran to its end (${stats.flood?.sent} bytes)`);
});

Deno.test("remote invoke over winrm refuses an endless reply header", async () => {
  const { run, where, stats, shells } = await invokeAgainst({ hostile: { mode: "flood-header", on: "Receive" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: Receive to ${where} failed: the reply header is longer than 64 KiB\n${HINT}`,
  });
  assertEquals(stats.flood?.finished, false, `the flood ran to its end (${stats.flood?.sent} bytes)`);
  assertEquals(shells, [], "the shell was deleted over a fresh connection");
});

Deno.test("remote invoke over winrm refuses a reply without a length past 1 MiB after authentication", async () => {
  const { run, where, stats } = await invokeAgainst({ hostile: { mode: "flood-no-length", on: "Receive" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: Receive to ${where} failed: the reply is larger than 1 MiB\n${HINT}`,
  });
  assertEquals(stats.flood?.finished, false, `the flood ran to its end (${stats.flood?.sent} bytes)`);
});

Deno.test("remote invoke over winrm refuses a Content-Length past 1 MiB without reading the body", async () => {
  const { run, where, stats } = await invokeAgainst({ hostile: { mode: "flood-elements", on: "Create" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: Create to ${where} failed: the reply is larger than 1 MiB\n${HINT}`,
  });
  assertEquals(stats.flood?.finished, false, `the flood ran to its end (${stats.flood?.sent} bytes)`);
});

Deno.test("remote invoke over winrm refuses a reply of 200,000 empty elements before parsing it", async () => {
  const { run, where } = await invokeAgainst({ hostile: { mode: "many-elements", on: "Create" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: bad reply to Create from ${where}: the reply holds more than 10000 elements; refused\n${HINT}`,
  });
});

Deno.test("remote invoke over winrm calls a Create reply without a ShellId a protocol error", async () => {
  const { run, where } = await invokeAgainst({ hostile: { mode: "no-payload", on: "Create" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: bad reply to Create from ${where}: the create reply names no ShellId\n${HINT}`,
  });
});

Deno.test("remote invoke over winrm calls a Command reply without a CommandId a protocol error and deletes the shell", async () => {
  const { run, where, shells, stats } = await invokeAgainst({ hostile: { mode: "no-payload", on: "Command" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: bad reply to Command from ${where}: the command reply names no CommandId\n${HINT}`,
  });
  assertEquals(shells, []);
  assertEquals(stats.byAction.Delete, 1);
});

Deno.test("remote invoke over winrm calls a Receive reply without ReceiveResponse a protocol error", async () => {
  const { run, where, shells } = await invokeAgainst({ hostile: { mode: "no-payload", on: "Receive" } });
  assertEquals(run, {
    code: 244,
    stdout: "",
    stderr: `remote: bad reply to Receive from ${where}: the receive reply has no ReceiveResponse\n${HINT}`,
  });
  assertEquals(shells, []);
});

for (const on of ["Create", "Receive"]) {
  Deno.test(`remote invoke over winrm calls a ${on} reply cut short a protocol error`, async () => {
    const { run, where } = await invokeAgainst({ hostile: { mode: "truncated", on } });
    assertEquals(run, {
      code: 244,
      stdout: "",
      stderr: `remote: ${on} to ${where} failed: the reply was cut short (the server closed the connection ` +
        `before its end)\n${HINT}`,
    });
  });
}
