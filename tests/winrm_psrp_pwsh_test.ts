/**
 * What the PowerShell test server (tests/winrm_psrp_shell.ts, on plugins/psrp/server.ts) sends is CLIXML real
 * pwsh reads: every message of an open, a pipeline's output, an error, a warning, a failed pipeline, a stopped
 * one and a host call travels through WinRM to the client, and each message's CLIXML is then given to
 * pwsh 7.6's `[System.Management.Automation.PSSerializer]::Deserialize`, which reports what it read.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startWinrmServer } from "./winrm_server.ts";
import { WinrmClient } from "../transports/winrm/client.ts";
import { openPsrpChannel } from "../transports/winrm/psrp.ts";
import {
  decodeFragments,
  decodeMessage,
  Defragmenter,
  invokeScript,
  type Message,
  messageTypeName,
  PacketParser,
} from "../plugins/psrp/mod.ts";
import { runScript, withPwsh } from "./psrp_pwsh.ts";

/** runs `script` through the WinRM PowerShell shell and returns every message the server sent */
async function messagesOf(script: string, stopAfterMs?: number): Promise<Message[]> {
  await using server = await startWinrmServer({ allowUnencrypted: true, auth: ["basic"] });
  const client = new WinrmClient({
    url: new URL(server.url),
    auth: "basic",
    username: "alice",
    password: "Secr3t-pässword",
    tls: { verifyCa: true, verifyHost: true },
    allowRedirection: false,
    operationTimeoutMs: 20_000,
    connectTimeoutMs: 5_000,
  });
  await using channel = openPsrpChannel(
    client,
    "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
    new AbortController().signal,
  );
  const [forClient, forTest] = channel.stdout.tee();
  const seen: Message[] = [];
  const collecting = (async () => {
    const parser = new PacketParser();
    const d = new Defragmenter();
    for await (const chunk of forTest) {
      for (const p of parser.push(chunk)) {
        if (p.kind !== "Data") continue;
        for (const f of decodeFragments(p.data)) {
          const m = d.push(f);
          if (m) seen.push(decodeMessage(m));
        }
      }
    }
  })();
  const stop = new AbortController();
  if (stopAfterMs !== undefined) setTimeout(() => stop.abort(), stopAfterMs);
  await invokeScript({
    readable: forClient,
    writable: channel.stdin,
    script,
    format: "json",
    stdout: new WritableStream(),
    stderr: new WritableStream(),
    signal: stop.signal,
  });
  await collecting;
  return seen;
}

const CHECK = `
param([string[]]$docs)
foreach ($doc in $docs) {
  $v = [System.Management.Automation.PSSerializer]::Deserialize($doc)
  $t = if ($null -eq $v) { 'null' } else { $v.PSObject.TypeNames[0] }
  $p = if ($v -is [psobject] -and $v.PSObject.Properties) {
    ($v.PSObject.Properties | ForEach-Object {
      $x = $_.Value
      if ($x -is [psobject] -and $x.PSObject.TypeNames[0] -like '*ErrorRecord') { "$($_.Name)=ErrorRecord:$($x.Exception.Message)" }
      elseif ($x -is [System.Collections.IDictionary]) { "$($_.Name)=dict:$($x['PSVersionTable']['PSVersion'])" }
      elseif ($x -is [System.Collections.IList]) { "$($_.Name)=list:$($x -join '|')" }
      else { "$($_.Name)=$x" }
    }) -join ';'
  } else { "$v" }
  "$t $p"
}
`;

Deno.test("pwsh deserialises the CLIXML of every message the PowerShell test server sends", async () => {
  const runs = [
    await messagesOf("'text'; 42; Write-Warning 'careful'; Write-Error 'it broke'"),
    await messagesOf("throw 'bad input'"),
    await messagesOf("exit 7"),
    await messagesOf("Start-Sleep 100", 500),
  ];
  const messages = runs.flat().filter((m) => m.destination === 1);
  // only the server's messages, in the order it sent them, without the BOM (decodeMessage dropped it)
  const docs = messages.map((m) =>
    `<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">${m.data}</Objs>`
  );
  const read = await withPwsh({}, async ({ pool }) => {
    const r = await runScript(pool, CHECK, [docs]);
    assertEquals(r.errors, []);
    return r.output.map(String);
  });
  const byType = new Map<string, string[]>();
  messages.forEach((m, i) => {
    const name = messageTypeName(m.type) ?? String(m.type);
    byType.set(name, [...byType.get(name) ?? [], read[i]]);
  });
  assertEquals(read.length, docs.length);
  assertEquals(
    byType.get("SESSION_CAPABILITY")?.[0],
    "System.Management.Automation.PSCustomObject " +
      "protocolversion=2.3;PSVersion=2.0;SerializationVersion=1.1.0.1",
  );
  assertEquals(
    byType.get("APPLICATION_PRIVATE_DATA")?.[0],
    "System.Management.Automation.PSCustomObject " +
      "ApplicationPrivateData=dict:5.1.20348.2340",
  );
  assertEquals(
    byType.get("RUNSPACEPOOL_STATE")?.[0],
    "System.Management.Automation.PSCustomObject RunspaceState=2",
  );
  assertEquals(byType.get("PIPELINE_OUTPUT")?.slice(0, 2), ["System.String text", "System.Int32 42"]);
  assertEquals(
    byType.get("WARNING_RECORD")?.[0].split(" ")[0],
    "Deserialized.System.Management.Automation.WarningRecord",
  );
  assertEquals(byType.get("WARNING_RECORD")?.[0].includes("InformationalRecord_Message=careful"), true);
  const error = byType.get("ERROR_RECORD")?.find((e) => e.includes("it broke")) ?? "";
  assertEquals(error.split(" ")[0], "Deserialized.System.Management.Automation.ErrorRecord", error);
  assertEquals(error.includes("FullyQualifiedErrorId=Microsoft.PowerShell.Commands.WriteErrorException"), true, error);
  const states = byType.get("PIPELINE_STATE") ?? [];
  // a throw in the script's statement is an error record, and the status statement after it still runs, as
  // PowerShell runs batched statements
  assertEquals(byType.get("ERROR_RECORD")?.some((e) => e.includes("bad input")), true);
  assertEquals(
    states.some((s) => s.includes("PipelineState=3;ExceptionAsErrorRecord=ErrorRecord:The pipeline has been stopped.")),
    true,
    states.join("\n"),
  );
  const call = byType.get("PIPELINE_HOST_CALL")?.[0] ?? "";
  assertEquals(call, "System.Management.Automation.PSCustomObject ci=-100;mi=6;mp=list:7");
});
