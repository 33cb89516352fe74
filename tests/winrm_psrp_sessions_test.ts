/**
 * PowerShell shells kept on a Windows host: `remote get --computer-name` lists them (WS-Enumeration), and the
 * transport's Disconnect and Reconnect put a shell's State where MS-WSMV 3.1.4.15–16 says, with the idle
 * timeout ending a disconnected shell. The peer is tests/winrm_server.ts with its PowerShell part.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startWinrmServer, type WinrmServer } from "./winrm_server.ts";
import { runRemote, tempHome } from "./run_remote.ts";
import { type RobustOperation, WinrmClient, WinrmFaultError } from "../transports/winrm/client.ts";
import { Action, psrpReceiveBody, robustHeaders } from "../transports/winrm/wsman_xml.ts";
import { openPsrpChannel } from "../transports/winrm/psrp.ts";
import { disconnectShell, enumerateShells, reconnectShell } from "../transports/winrm/psrp_sessions.ts";
import { connectOutOfProc, RunspacePool } from "../plugins/psrp/mod.ts";

const PASSWORD = "Secr3t-pässword";
const PS = "http://schemas.microsoft.com/powershell/";

function clientOf(server: WinrmServer, operationTimeoutMs = 20_000): WinrmClient {
  return new WinrmClient({
    url: new URL(server.url),
    auth: "negotiate",
    username: "WIN01\\alice",
    password: PASSWORD,
    tls: { verifyCa: true, verifyHost: true },
    allowRedirection: false,
    operationTimeoutMs,
    connectTimeoutMs: 5_000,
  });
}

/** opens a runspace pool on `configuration` and leaves its shell on the host; returns the ShellId */
async function leaveShell(
  server: WinrmServer,
  configuration: string,
): Promise<{ shellId: string; client: WinrmClient }> {
  const client = clientOf(server);
  const channel = openPsrpChannel(client, PS + configuration, new AbortController().signal);
  const conn = connectOutOfProc({ readable: channel.stdout, writable: channel.stdin });
  const pool = new RunspacePool({ wire: conn.wire });
  conn.wire.attach(pool);
  await pool.open();
  return { shellId: pool.rpid.toUpperCase(), client };
}

Deno.test("remote get --computer-name lists the PowerShell sessions on a Windows host, Disconnected or not", async () => {
  await using server = await startWinrmServer({});
  const kept = await leaveShell(server, "Microsoft.PowerShell");
  const busy = await leaveShell(server, "JEA.Maintenance");
  try {
    await disconnectShell(kept.client, PS + "Microsoft.PowerShell", kept.shellId, {
      idleTimeoutMs: 15 * 3600_000,
      bufferMode: "Drop",
    });
    await using home = await tempHome();
    const run = await runRemote(
      ["get", "--computer-name", `http://127.0.0.1:${server.port}/wsman`, "--credential", "WIN01\\alice", "--json"],
      { env: { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD } },
    );
    assertEquals(run.code, 0, run.stderr);
    const rows = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const pick = (r: Record<string, unknown>) => [r.name, r.transport, r.state, r.configurationName, r.availability];
    assertEquals(
      rows.map(pick).sort(),
      [
        [busy.shellId, "winrm", "Opened", "JEA.Maintenance", "Busy"],
        [kept.shellId, "winrm", "Disconnected", "Microsoft.PowerShell", "None"],
      ].sort(),
    );
    assert(rows.every((r) => r.foreign === true), "shells remote did not record are foreign");
    // the host kept what Disconnect asked for
    const shells = await enumerateShells(kept.client);
    const mine = shells.find((s) => s.shellId === kept.shellId);
    assertEquals([mine?.idleTimeOut, mine?.bufferMode], ["PT54000.000S", "Drop"]);
  } finally {
    kept.client.close();
    busy.client.close();
  }
});

Deno.test("Reconnect brings a disconnected PowerShell shell back; the idle timeout ends one left alone", async () => {
  await using server = await startWinrmServer({});
  const a = await leaveShell(server, "Microsoft.PowerShell");
  const b = await leaveShell(server, "Microsoft.PowerShell");
  try {
    const state = async (id: string) => (await enumerateShells(a.client)).find((s) => s.shellId === id)?.state;
    await disconnectShell(a.client, PS + "Microsoft.PowerShell", a.shellId);
    assertEquals(await state(a.shellId), "Disconnected");
    await reconnectShell(a.client, PS + "Microsoft.PowerShell", a.shellId);
    assertEquals(await state(a.shellId), "Connected");
    await disconnectShell(b.client, PS + "Microsoft.PowerShell", b.shellId, { idleTimeoutMs: 200 });
    assertEquals(await state(b.shellId), "Disconnected");
    const until = Date.now() + 10_000;
    while ((await state(b.shellId)) !== undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assertEquals(await state(b.shellId), undefined, "the idle timeout ended the disconnected shell");
    assertEquals(server.shells(), [a.shellId]);
  } finally {
    a.client.close();
    b.client.close();
  }
});

Deno.test("the host keeps a robust Receive's reply for a retransmission and refuses its OperationID for a new request", async () => {
  await using server = await startWinrmServer({});
  const left = await leaveShell(server, "Microsoft.PowerShell");
  const shellId = left.shellId;
  left.client.close();
  // Receives that the host answers after OperationTimeout (1 s) with w:TimedOut, as the pool has nothing to say
  const client = clientOf(server, 1_000);
  const client2 = clientOf(server, 1_000);
  try {
    const uri = PS + "Microsoft.PowerShell";
    const receive = (operation: RobustOperation) =>
      client.request(Action.receive, psrpReceiveBody(undefined), {
        resourceUri: uri,
        selectors: { ShellId: shellId },
        operation,
      }, (env) => robustHeaders(env).sequenceId);
    // the host's reply, its w:TimedOut fault, is kept as reply 1
    const operation: RobustOperation = {
      id: `uuid:${crypto.randomUUID().toUpperCase()}`,
      retransmit: false,
      received: 0,
    };
    const first = await receive(operation).catch((e) => e);
    assert(first instanceof WinrmFaultError, String(first));
    assertEquals([first.fault.code, operation.received], [2150858793, 1]);
    // the same OperationID as a new request (mustUnderstand false) is wsa:InvalidMessageInformationHeader
    const again = await receive({ ...operation, received: 0, messageId: undefined }).catch((e) => e);
    assert(again instanceof WinrmFaultError, String(again));
    assertEquals([again.fault.subcode, again.fault.code], ["a:InvalidMessageInformationHeader", 2150858767]);
    // as a retransmission, from another connection, the kept reply comes again after the host's Acknowledge
    const replayed = await client2.request(Action.receive, psrpReceiveBody(undefined), {
      resourceUri: uri,
      selectors: { ShellId: shellId },
      operation: { ...operation, retransmit: true, received: 0 },
    }, () => "reply").catch((e) => e);
    assert(replayed instanceof WinrmFaultError && replayed.fault.code === 2150858793, String(replayed));
    assertEquals(server.stats.robust.replayed, 1);
  } finally {
    client.close();
    client2.close();
  }
});
