/**
 * plugins/psrp against the real PowerShell 7.6 in server mode (`pwsh -s` over stdio): opening a pool,
 * pipelines with output, input, errors and the other streams, host calls answered by a test host, stop by
 * Signal, and a clean close. Each test runs one pwsh, bounded in time, killed at the end (tests/psrp_pwsh.ts).
 */
import { deepStrictEqual as assertEquals, match, ok, rejects } from "node:assert/strict";
import {
  type ErrorRecord,
  type InformationRecord,
  PipelineState,
  type ProgressRecord,
  type PSObject,
  PSPrimitive,
  PSSecureString,
  type PSValue,
  readErrorRecord,
  RunspacePoolState,
} from "../plugins/psrp/mod.ts";
import { runScript, withPwsh } from "./psrp_pwsh.ts";

Deno.test("RunspacePool opens on pwsh -s, negotiates protocol 2.4 and runs 1+1", async () => {
  await withPwsh({}, async ({ pool }) => {
    assertEquals(pool.state, RunspacePoolState.Opened);
    assertEquals(pool.server, { protocolVersion: "2.4", psVersion: "2.0", serializationVersion: "1.1.0.1" });
    const data = pool.applicationPrivateData as PSObject;
    const table = [...(data.dict ?? new Map()).entries()].find(([k]) => k === "PSVersionTable")?.[1] as PSObject;
    const psVersion = [...(table.dict ?? new Map()).entries()].find(([k]) => k === "PSVersion")?.[1];
    match(String(psVersion), /^7\.6\./);
    const r = await runScript(pool, "1+1");
    assertEquals(r, { output: [2], errors: [], state: PipelineState.Completed });
  });
});

Deno.test("RunspacePool negotiates down to 2.3 when it offers 2.3, as an older client does", async () => {
  await withPwsh({ protocolVersion: "2.3" }, async ({ pool }) => {
    assertEquals(pool.protocolVersion, "2.3");
    assertEquals((await runScript(pool, "'older'")).output, ["older"]);
  });
});

Deno.test("Get-Date arrives as a DateTime carrying its DisplayHint note", async () => {
  await withPwsh({}, async ({ pool }) => {
    const before = Date.now();
    const { output } = await runScript(pool, "Get-Date");
    const o = output[0] as PSObject;
    ok(o.value instanceof PSPrimitive && o.value.tag === "DT");
    const when = o.value.toDate().getTime();
    ok(Math.abs(when - before) < 60_000, `${o.value.value} is not now`);
    const hint = o.get("DisplayHint") as PSObject;
    assertEquals([hint.typeNames[0], hint.toString(), hint.value], [
      "Microsoft.PowerShell.Commands.DisplayHintType",
      "DateTime",
      2,
    ]);
  });
});

Deno.test("Pipeline input: objects sent with sendInput reach the script's process block in order", async () => {
  await withPwsh({}, async ({ pool }) => {
    const output: PSValue[] = [];
    const p = pool.createPipeline({
      commands: [{ cmd: "process { $_ * 2 }", isScript: true }],
      input: true,
      output: (v) => output.push(v),
    });
    for (const v of [1, 2, 3]) p.sendInput(v);
    p.sendInput("ab");
    p.endInput();
    assertEquals((await p.done).state, PipelineState.Completed);
    assertEquals(output, [2, 4, 6, "abab"]);
  });
});

Deno.test("Pipeline commands: named and positional arguments, and one command piped into the next", async () => {
  await withPwsh({}, async ({ pool }) => {
    const output: PSValue[] = [];
    const p = pool.createPipeline({
      commands: [
        { cmd: "Write-Output", args: [{ name: "InputObject", value: ["b", "a", "c"] }] },
        { cmd: "Sort-Object", args: [{ name: "Descending", value: true }] },
        {
          cmd: 'param([Parameter(ValueFromPipeline)]$x, $sep) process { "$x$sep" }',
          isScript: true,
          args: [{ name: "sep", value: "!" }],
        },
      ],
      output: (v) => output.push(v),
    });
    await p.done;
    assertEquals(output, ["c!", "b!", "a!"]);
    assertEquals((await runScript(pool, 'param($a, $b) "$a-$b"', ["x", 7])).output, ["x-7"]);
  });
});

Deno.test("ERROR_RECORD: Write-Error's message, id and category; a throw fails the pipeline with its reason", async () => {
  await withPwsh({}, async ({ pool }) => {
    const errors: ErrorRecord[] = [];
    const p = pool.createPipeline({
      commands: [{
        cmd: "Write-Error -Message 'disk full' -ErrorId Disk.Full -Category ResourceUnavailable; 'after'",
        isScript: true,
      }],
      error: (e) => errors.push(e),
    });
    assertEquals((await p.done).state, PipelineState.Completed);
    assertEquals(errors.length, 1);
    assertEquals(errors[0].message, "disk full");
    match(errors[0].fullyQualifiedErrorId, /^Disk\.Full/);
    assertEquals(errors[0].category, 21); // ErrorCategory.ResourceUnavailable

    const thrown = pool.createPipeline({ commands: [{ cmd: "throw 'fatal thing'", isScript: true }] });
    const result = await thrown.done;
    assertEquals(result.state, PipelineState.Failed);
    assertEquals(result.reason?.message, "fatal thing");
  });
});

Deno.test("PROGRESS, INFORMATION, WARNING and VERBOSE records reach their handlers", async () => {
  await withPwsh({}, async ({ pool }) => {
    const progress: ProgressRecord[] = [];
    const info: InformationRecord[] = [];
    const warnings: string[] = [];
    const verbose: string[] = [];
    const p = pool.createPipeline({
      commands: [{
        cmd: "Write-Progress -Activity Copying -Status 'half way' -PercentComplete 50 -Id 7; " +
          "Write-Information -MessageData 'for you' -Tags t1; Write-Warning 'careful'; " +
          "Write-Verbose 'chatty' -Verbose",
        isScript: true,
      }],
      progress: (r) => progress.push(r),
      information: (r) => info.push(r),
      warning: (m) => warnings.push(m),
      verbose: (m) => verbose.push(m),
    });
    await p.done;
    const copying = progress.find((r) => r.activity === "Copying");
    ok(copying, JSON.stringify(progress));
    assertEquals([copying.activityId, copying.statusDescription, copying.percentComplete], [7, "half way", 50]);
    assertEquals(info.map((r) => [r.messageData, r.tags]), [["for you", ["t1"]]]);
    assertEquals(warnings, ["careful"]);
    assertEquals(verbose, ["chatty"]);
  });
});

Deno.test("Host calls: Read-Host, Read-Host -Prompt, -AsSecureString, PromptForChoice and Write-Host reach the host", async () => {
  const written: string[] = [];
  const host = {
    readLine: () => "typed line",
    readLineAsSecureString: () => "s3cret",
    prompt: (_caption: string, _message: string, fields: { name: string }[]) =>
      Object.fromEntries(fields.map((f) => [f.name, `answer for ${f.name}`])),
    promptForChoice: (_c: string, _m: string, choices: { label: string }[]) =>
      choices.findIndex((c) => c.label === "&No"),
    writeLine: (text: string) => void written.push(text),
    rawUI: { bufferSize: { width: 100, height: 40 } },
  };
  await withPwsh({ host }, async ({ pool }) => {
    const r = await runScript(
      pool,
      "$a = Read-Host; $b = Read-Host -Prompt Name; $s = Read-Host -AsSecureString; " +
        "$c = $host.UI.PromptForChoice('cap', 'msg', [System.Management.Automation.Host.ChoiceDescription[]]@('&Yes', '&No'), 0); " +
        "Write-Host 'to the host'; " +
        "$a; $b; [Net.NetworkCredential]::new('', $s).Password; $c; $host.UI.RawUI.BufferSize.Width",
    );
    assertEquals(r.errors, []);
    assertEquals(r.output, ["typed line", "answer for Name", "s3cret", 1, 100]);
    ok(written.includes("to the host"), JSON.stringify(written));
  });
});

Deno.test("Host calls the host lacks are answered with an error, so the pipeline goes on instead of hanging", async () => {
  await withPwsh({ host: {} }, async ({ pool }) => {
    const r = await runScript(pool, "try { Read-Host } catch { 'caught: ' + $_.Exception.Message }; 'went on'");
    assertEquals(r.output.length, 2);
    match(String(r.output[0]), /caught: .*does not implement ReadLine/);
    assertEquals(r.output[1], "went on");
  });
});

Deno.test("Pipeline.stop() stops Start-Sleep 100 via Signal; the pool stays usable", async () => {
  await withPwsh({}, async ({ pool }) => {
    const states: number[] = [];
    const p = pool.createPipeline({
      commands: [{ cmd: "'started'; Start-Sleep 100", isScript: true }],
      output: () => p.stop(),
      state: (s) => states.push(s),
    });
    const result = await p.done;
    assertEquals(result.state, PipelineState.Stopped);
    match(result.reason?.fullyQualifiedErrorId ?? "", /PipelineStopped/);
    ok(states.includes(PipelineState.Stopped));
    assertEquals((await runScript(pool, "'still here'")).output, ["still here"]);
  });
});

Deno.test("RunspacePool.close() gets the CloseAck and pwsh exits once its stdin closes", async () => {
  await withPwsh({}, async ({ pool, child, closeInput }) => {
    await runScript(pool, "1");
    await pool.close();
    assertEquals(pool.state, RunspacePoolState.Closed);
    await closeInput();
    const status = await child.status; // bounded by withPwsh's deadline
    // pwsh -s reads the end of stdin as an empty line and exits with 0x0FA0's low byte (160); it is gone either way
    ok(!status.signal, `pwsh was killed: ${status.signal}`);
    await rejects(async () => await pool.createPipeline({ commands: [{ cmd: "1" }] }).done, /not open/);
  });
});

Deno.test("Large objects cross in many fragments both ways, with a small fragment size", async () => {
  await withPwsh({ fragmentSize: 1000 }, async ({ pool }) => {
    const big = "x".repeat(300_000) + "é€😀";
    const r = await runScript(pool, "param($s) $s.Length; 'y' * 250000 + 'é€😀'", [big]);
    assertEquals(r.output[0], big.length);
    assertEquals(r.output[1], "y".repeat(250_000) + "é€😀");
  });
});

Deno.test("Pipeline statements: moreStatements run after the first, in order, in one pipeline", async () => {
  await withPwsh({}, async ({ pool }) => {
    const output: PSValue[] = [];
    const p = pool.createPipeline({
      commands: [{ cmd: "Write-Output", args: [{ name: "InputObject", value: "first" }] }],
      moreStatements: [
        [{ cmd: 'param($a, $b) "$a-$b"', isScript: true, args: [{ value: "x" }, { value: 7 }] }],
        [{ cmd: "Get-Date" }, { cmd: "Select-Object", args: [{ name: "ExpandProperty", value: "Year" }] }],
      ],
      output: (v) => output.push(v),
    });
    assertEquals((await p.done).state, PipelineState.Completed);
    assertEquals(output, ["first", "x-7", new Date().getFullYear()]);
  });
});

Deno.test("10 MB of pipeline output streams object by object with the receive buffer bounded", async () => {
  await withPwsh({ timeoutMs: 120_000 }, async ({ pool, wire }) => {
    let objects = 0;
    let chars = 0;
    let maxBuffered = 0;
    const p = pool.createPipeline({
      commands: [{ cmd: "1..10000 | ForEach-Object { 'x' * 1000 }", isScript: true }],
      output: (v) => {
        objects++;
        chars += String(v).length;
        maxBuffered = Math.max(maxBuffered, wire.buffered);
      },
    });
    assertEquals((await p.done).state, PipelineState.Completed);
    assertEquals([objects, chars], [10_000, 10_000_000]);
    ok(maxBuffered < 256 * 1024, `the wire held ${maxBuffered} bytes at once`);
  });
});

Deno.test("Host calls: PromptForCredential and PromptForChoiceMultipleSelection answered by the host", async () => {
  const host = {
    promptForCredential: (_c: string, _m: string, user: string, target: string) => ({
      userName: `${user}@${target}`,
      password: "p@ss wörd",
    }),
    promptForChoiceMultipleSelection: () => [0, 2],
  };
  await withPwsh({ host }, async ({ pool }) => {
    const r = await runScript(
      pool,
      "$c = $host.UI.PromptForCredential('cap', 'msg', 'alice', 'db1'); $c.UserName; $c.GetNetworkCredential().Password; " +
        "$choices = [System.Management.Automation.Host.ChoiceDescription[]]@('&a', '&b', '&c'); " +
        "($host.UI.PromptForChoice('cap', 'msg', $choices, [int[]]@(1)) | ForEach-Object { $_ }) -join ','",
    );
    assertEquals(r.errors, []);
    assertEquals(r.output, ["alice@db1", "p@ss wörd", "0,2"]);
  });
});

Deno.test("With no host, Read-Host fails in the remote script instead of hanging", async () => {
  await withPwsh({}, async ({ pool }) => {
    const r = await runScript(pool, "try { Read-Host 'q' } catch { 'no host' }; 'after'");
    assertEquals(r.output, ["no host", "after"]);
  });
});

Deno.test("mergeErrorToOutput sends a command's errors down its output, as 2>&1", async () => {
  await withPwsh({}, async ({ pool }) => {
    const output: PSValue[] = [];
    const errors: string[] = [];
    const p = pool.createPipeline({
      commands: [{ cmd: "Write-Error 'merged'; 'plain'", isScript: true, mergeErrorToOutput: true }],
      output: (v) => output.push(v),
      error: (e) => errors.push(e.message),
    });
    await p.done;
    assertEquals(errors, []);
    assertEquals(output.length, 2);
    assertEquals((output[0] as PSObject).typeNames[0], "System.Management.Automation.ErrorRecord");
    assertEquals(readErrorRecord(output[0]).message, "merged");
    assertEquals(output[1], "plain");
  });
});

Deno.test("20 MB of pipeline input reaches pwsh in order, the sender held back by the server's acks", async () => {
  await withPwsh({ timeoutMs: 180_000 }, async ({ pool }) => {
    const output: PSValue[] = [];
    const p = pool.createPipeline({
      commands: [{
        cmd:
          "begin { $n = 0; $len = 0; $bad = 0 } process { if ([int]$_.Substring(0, 6) -ne $n) { $bad++ }; $n++; $len += $_.Length } end { $n; $len; $bad }",
        isScript: true,
      }],
      input: true,
      output: (v) => output.push(v),
    });
    const chunk = "z".repeat(100_000 - 6);
    for (let i = 0; i < 200; i++) await p.sendInput(String(i).padStart(6, "0") + chunk);
    p.endInput();
    await p.done;
    assertEquals(output, [200, 20_000_000, 0]);
  });
});

Deno.test("At protocol 2.3 secure strings cross both ways under the exchanged session key", async () => {
  const host = { readLineAsSecureString: () => "typed s3cret" };
  await withPwsh({ protocolVersion: "2.3", host }, async ({ pool }) => {
    const r = await runScript(
      pool,
      "ConvertTo-SecureString 'from pwsh' -AsPlainText -Force; $s = Read-Host -AsSecureString; " +
        "[Net.NetworkCredential]::new('', $s).Password",
    );
    assertEquals(r.errors, []);
    ok(r.output[0] instanceof PSSecureString);
    assertEquals(await r.output[0].decrypt(pool.sessionKey), "from pwsh");
    assertEquals(r.output[1], "typed s3cret");
    const arg = await PSSecureString.encrypt("to pwsh", pool.sessionKey);
    const back = await runScript(pool, "param($s) [Net.NetworkCredential]::new('', $s).Password", [arg]);
    assertEquals(back.output, ["to pwsh"]);
  });
});

Deno.test("getCommandMetadata() finds Out-Default and Exit-PSSession, as Enter-PSSession checks", async () => {
  await withPwsh({}, async ({ pool }) => {
    const output: PSValue[] = [];
    const p = pool.getCommandMetadata({ names: ["Out-Default", "Exit-PSSession"] }, { output: (v) => output.push(v) });
    assertEquals((await p.done).state, PipelineState.Completed);
    assertEquals((output[0] as PSObject).get("Count"), 2);
    assertEquals(output.slice(1).map((o) => (o as PSObject).get("Name")).sort(), ["Exit-PSSession", "Out-Default"]);
  });
});
