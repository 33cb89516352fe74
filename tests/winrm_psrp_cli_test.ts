/**
 * PowerShell sessions over WinRM (PSRP in WS-Man shells on a PowerShell configuration's resource URI) through
 * the real command line, against the WS-Man test server of tests/winrm_server.ts and its PowerShell part
 * (tests/winrm_psrp_shell.ts; no Windows host runs here).
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { startWinrmServer, type WinrmServer, type WinrmServerOptions } from "./winrm_server.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";
import { spawnInPty } from "./pty.ts";

const PASSWORD = "Secr3t-pässword";
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CTRL_C = "http://schemas.microsoft.com/powershell/signal/crtl_c";

async function withServer(
  opts: WinrmServerOptions,
  fn: (s: WinrmServer, home: TempHome, base: string[]) => Promise<void>,
): Promise<void> {
  const server = await startWinrmServer(opts);
  try {
    await using home = await tempHome();
    const base = ["--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice"];
    await fn(server, home, base);
  } finally {
    await server.close();
  }
}

const envOf = (home: TempHome) => ({ ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD });

/** what stderr says when the connection to the test server broke and was taken back */
const reconnected = (server: WinrmServer) =>
  `remote: lost the connection to 127.0.0.1:${server.port}; reconnecting for up to 4 minutes (Ctrl-C gives up)\n` +
  `remote: reconnected to 127.0.0.1:${server.port}\n`;

Deno.test("remote enter --computer-name opens a PowerShell session (PSRP) over NTLM-sealed http by default", async () => {
  await withServer({}, async (server, home, base) => {
    const run = await runRemote(["enter", ...base], {
      env: envOf(home),
      stdin: "'hello from PSRP'\nwhoami\n$PSSenderInfo.ConfigurationName\nexit 3\n",
    });
    assertEquals(run.code, 3, run.stderr);
    assertEquals(
      run.stdout,
      "[127.0.0.1]: PS C:\\Users\\alice\\Documents> hello from PSRP\n" +
        "[127.0.0.1]: PS C:\\Users\\alice\\Documents> win01\\alice\n" +
        "[127.0.0.1]: PS C:\\Users\\alice\\Documents> Microsoft.PowerShell\n" +
        "[127.0.0.1]: PS C:\\Users\\alice\\Documents> ",
    );
    assertEquals(run.stderr, "");
    // one PowerShell shell, created as MS-PSRP 3.1.5.3.1 says, every request sealed, and deleted at the end
    assertEquals(server.stats.psrpCreates, 1);
    const [created] = server.stats.psrpShells;
    assertEquals(created.resourceUri, "http://schemas.microsoft.com/powershell/Microsoft.PowerShell");
    assertEquals(created.mustComply, true);
    match(created.protocolVersion, /^2\.\d$/);
    match(created.shellId, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
    match(created.sessionId, /^uuid:[0-9A-F-]{36}$/);
    assertEquals(server.stats.plainRequests, 0);
    assert(server.stats.encryptedRequests > 0);
    assertEquals(server.shells(), []);
  });
});

Deno.test("remote enter --use-ssl --authentication Basic opens a PowerShell session over https", async () => {
  await withServer({ https: true }, async (server, home, base) => {
    const run = await runRemote(
      ["enter", ...base, "--use-ssl", "--authentication", "Basic", "--skip-ca-check"],
      { env: envOf(home), stdin: "$env:COMPUTERNAME\nexit 0\n" },
    );
    assertEquals(run.code, 0, run.stderr);
    match(run.stdout, /^\[127\.0\.0\.1\]: PS C:\\Users\\alice\\Documents> WIN01\n/);
    assertEquals(server.stats.handshakes, 0, "Basic needs no NTLM handshake");
    assertEquals(server.stats.psrpCreates, 1);
    assertEquals(server.shells(), []);
  });
});

Deno.test("remote invoke --computer-name runs a PowerShell script: output, errors and exit codes as pwsh -c", async () => {
  await withServer({}, async (server, home, base) => {
    const cases: [string, { code: number; stdout: string; stderr: string }][] = [
      ["'one'; 'two'", { code: 0, stdout: "one\ntwo\n", stderr: "" }],
      ["'before'; Write-Error 'it broke'", { code: 1, stdout: "before\n", stderr: "Write-Error: it broke\n" }],
      ["Write-Warning 'careful'; 'after'", { code: 0, stdout: "after\n", stderr: "WARNING: careful\n" }],
      ["'bye'; exit 7", { code: 7, stdout: "bye\n", stderr: "" }],
      ["throw 'bad input'", { code: 1, stdout: "", stderr: "Exception: bad input\n" }],
    ];
    for (const [script, want] of cases) {
      const run = await runRemote(["invoke", ...base, "--", script], { env: envOf(home) });
      assertEquals(run, want, script);
    }
    assertEquals(server.stats.psrpCreates, cases.length);
    assertEquals(server.stats.byAction.Create, cases.length, "every run used PSRP, none a WinRS cmd shell");
    // the exit code comes from the script's own pipeline (a second statement reads $?), not from a second pipeline
    assertEquals(server.stats.byAction.Command, cases.length, "one Command per run");
    assertEquals(server.shells(), []);
    const json = await runRemote(["invoke", ...base, "--json", "--", "'one'; Write-Error 'it broke'"], {
      env: envOf(home),
    });
    assertEquals([json.code, json.stderr], [1, ""]);
    assertEquals(json.stdout.trim().split("\n").map((l) => JSON.parse(l)), [
      { host: "127.0.0.1", stream: "output", data: "one" },
      { host: "127.0.0.1", stream: "stderr", data: "Write-Error: it broke\n" },
      { host: "127.0.0.1", stream: "exit", data: null, exitCode: 1 },
    ]);
    // arguments and piped input
    const args = await runRemote(
      ["invoke", ...base, "--argument-list", "a", "--argument-list", "b", "--", "$args -join '+'"],
      { env: envOf(home) },
    );
    assertEquals(args, { code: 0, stdout: "a+b\n", stderr: "" });
    const input = await runRemote(["invoke", ...base, "--", "$input | % { $_.ToUpper() }"], {
      env: envOf(home),
      stdin: "one\ntwo\n",
    });
    assertEquals(input, { code: 0, stdout: "ONE\nTWO\n", stderr: "" });
  });
});

Deno.test("remote invoke --configuration-name picks a JEA endpoint; cmd keeps the WinRS shell; an unknown one exits 252", async () => {
  await withServer({}, async (server, home, base) => {
    const jea = await runRemote(
      ["invoke", ...base, "--configuration-name", "JEA.Maintenance", "--", "$PSSenderInfo.ConfigurationName"],
      { env: envOf(home) },
    );
    assertEquals(jea, { code: 0, stdout: "JEA.Maintenance\n", stderr: "" });
    assertEquals(
      server.stats.psrpShells.at(-1)?.resourceUri,
      "http://schemas.microsoft.com/powershell/JEA.Maintenance",
    );
    const cmd = await runRemote(["invoke", ...base, "--configuration-name", "cmd", "--", "echo", "from", "cmd"], {
      env: envOf(home),
    });
    assertEquals(cmd, { code: 0, stdout: "from cmd\r\n", stderr: "" });
    assertEquals(server.stats.psrpCreates, 1, "cmd made no PowerShell shell");
    const none = await runRemote(["invoke", ...base, "--configuration-name", "Nope", "--", "1"], { env: envOf(home) });
    assertEquals(none, {
      code: 252,
      stdout: "",
      stderr: `remote: 127.0.0.1:${server.port} has no PowerShell session configuration Nope\n` +
        "hint: list the host's configurations with Get-PSSessionConfiguration; the default is Microsoft.PowerShell, " +
        "and --configuration-name cmd opens the WinRS command shell\n",
    });
    assertEquals(server.shells(), []);
  });
});

Deno.test("remote invoke over winrm: the shell quota and access denied are one-line errors with their own exit codes", async () => {
  await withServer({ maxShellsPerUser: 0 }, async (server, home, base) => {
    const run = await runRemote(["invoke", ...base, "--", "'x'"], { env: envOf(home) });
    assertEquals(run.code, 251);
    assertEquals(
      run.stderr,
      `remote: 127.0.0.1:${server.port} refused a new shell: the shell quota is used up (MSFT_WmiError 2150859173, ` +
        "0x803381a5): The WS-Management service cannot process the request. This user is allowed a maximum number " +
        "of 0 concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user\n" +
        "hint: close other shells of this user, or raise MaxShellsPerUser on the host\n",
    );
  });
  await withServer({ deniedConfigurations: ["JEA.Maintenance"] }, async (server, home, base) => {
    const run = await runRemote(["invoke", ...base, "--configuration-name", "JEA.Maintenance", "--", "'x'"], {
      env: envOf(home),
    });
    assertEquals(run.code, 245);
    assertEquals(
      run.stderr,
      `remote: 127.0.0.1:${server.port} denied access to Create (WSManFault 2147942405, 0x80070005): ` +
        "Access is denied\n" +
        "hint: the account needs to be an administrator or in Remote Management Users on the host\n",
    );
    assertEquals(server.shells(), []);
  });
});

Deno.test("remote invoke over winrm: Ctrl-C stops the PowerShell pipeline (signal crtl_c) and exits 130", async () => {
  await withServer({}, async (server, home, base) => {
    await using pty = await spawnInPty(
      Deno.execPath(),
      ["run", "-A", "--quiet", MAIN, "invoke", ...base, "--", "'started'; Start-Sleep 100; 'not reached'"],
      { cols: 100, rows: 30, env: envOf(home) },
    );
    await pty.waitFor(/^started\r$/m, 30_000);
    pty.write("\x03");
    assertEquals((await pty.exited).code, 130);
    assert(!pty.output().includes("not reached"));
    assertEquals(server.stats.signals.includes(CTRL_C), true, server.stats.signals.join(", "));
    assertEquals(server.shells(), []);
  });
});

Deno.test("remote enter over winrm in a terminal: Ctrl-C stops the running pipeline, not the session", async () => {
  await withServer({}, async (server, home, base) => {
    await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", ...base], {
      cols: 100,
      rows: 30,
      env: envOf(home),
    });
    const prompt = /\[127\.0\.0\.1\]: PS C:\\Users\\alice\\Documents> $/;
    await pty.waitFor(prompt, 30_000);
    pty.write('1..100 | % { "line $_"; Start-Sleep -Milliseconds 100 }\r');
    await pty.waitFor(/^line 2\r$/m, 30_000);
    pty.write("\x03");
    await pty.waitFor(prompt, 30_000);
    assert(!pty.output().includes("line 100"));
    pty.write("'still here'\r");
    await pty.waitFor(/^still here\r$/m, 30_000);
    await pty.waitFor(prompt);
    pty.write("exit 5\r");
    assertEquals((await pty.exited).code, 5);
    assertEquals(server.stats.signals.filter((s) => s === CTRL_C).length, 1);
    assertEquals(server.shells(), []);
  });
});

/**
 * `remote invoke` of a long pipeline whose host goes away after its second line; `interrupt`: Ctrl-C (SIGINT) once
 * stderr says it is reconnecting. Returns the exit code and stderr.
 */
async function loseHost(extra: string[], interrupt: boolean): Promise<{ code: number; stderr: string; port: number }> {
  const server = await startWinrmServer({});
  await using home = await tempHome();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "invoke",
      "--computer-name",
      "127.0.0.1",
      "--port",
      String(server.port),
      "--credential",
      "WIN01\\alice",
      ...extra,
      "--",
      '1..1000 | % { "line $_"; Start-Sleep -Milliseconds 100 }',
    ],
    env: { ...envOf(home), SSH_AUTH_SOCK: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("line 2\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    await server.close(); // the host goes away with the pipeline running
    const drained = (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    let stderr = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      if (interrupt && stderr.includes("(Ctrl-C gives up)\n")) {
        interrupt = false;
        child.kill("SIGINT");
      }
    }
    await drained;
    return { code: (await child.status).code, stderr, port: server.port };
  } finally {
    clearTimeout(timer);
  }
}

/** A run that gave up reconnecting: exit 250, the notice with its window, the failure, and where the shell is. */
function assertGaveUp(code: number, stderr: string, port: number, window: string): void {
  assertEquals(code, 250, stderr);
  const host = `127\\.0\\.0\\.1:${port}`;
  match(
    stderr,
    new RegExp(
      `^remote: lost the connection to ${host}; reconnecting for up to ${window} \\(Ctrl-C gives up\\)\\n` +
        `remote: Receive to ${host} failed: [^\\n]+\\n` +
        `hint: the shell is still on ${host} until its idle timeout ends it\\n$`,
    ),
  );
}

Deno.test("remote invoke over winrm: a host gone for longer than --max-retry-connection-time exits 250, not a hang", async () => {
  const { code, stderr, port } = await loseHost(["--max-retry-connection-time", "1s"], false);
  assertGaveUp(code, stderr, port, "1 second");
});

Deno.test("remote invoke over winrm: Ctrl-C while reconnecting gives up at once, as a lost connection (250)", async () => {
  // the default window is 4 minutes: only the Ctrl-C can end this run within the test's time
  const { code, stderr, port } = await loseHost([], true);
  assertGaveUp(code, stderr, port, "4 minutes");
});

Deno.test("remote invoke over winrm: a connection that breaks while a Receive is held is taken back, no output lost or repeated", async () => {
  // the 3rd Receive (the pool's is the 1st) is cut: the pipeline is running and has output waiting
  await withServer({ dropReceive: 3 }, async (server, home, base) => {
    const run = await runRemote(
      ["invoke", ...base, "--", '1..30 | % { "line $_"; Start-Sleep -Milliseconds 20 }'],
      { env: envOf(home) },
    );
    assertEquals(run, {
      code: 0,
      stdout: Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join(""),
      stderr: reconnected(server),
    });
    assertEquals(server.stats.droppedReceives, 1);
    assertEquals(server.stats.byAction.Reconnect, 1, "the client took the shell back before asking again");
    // the host had kept nothing for that Receive (it never answered it): the retransmission is a new Receive
    assertEquals([server.stats.robust.retransmissions, server.stats.robust.unknownRetransmissions], [1, 1]);
    assertEquals(server.shells(), []);
  });
});

// MS-WSMV 3.1.4.1.39: every Receive is a robust operation, so a reply the host sent is kept until the client has it
for (const at of ["held", "lost", "middle", "end"] as const) {
  const how = {
    held: "while the host holds a Receive that it answers later with output",
    lost: "after the host sent a reply with output that never arrives",
    middle: "in the middle of a reply with output",
    end: "after a reply's envelope but before the reply's end",
  }[at];
  Deno.test(`remote invoke over winrm: a connection that breaks ${how} loses no line and repeats none`, async () => {
    // Receives with pipeline output: the 3rd one's reply is broken; the pipeline runs on meanwhile
    await withServer({ breakReceiveReply: { nth: 3, at } }, async (server, home, base) => {
      const run = await runRemote(
        ["invoke", ...base, "--", '1..30 | % { "line $_"; Start-Sleep -Milliseconds 20 }; exit 3'],
        { env: envOf(home) },
      );
      assertEquals(run, {
        code: 3,
        stdout: Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join(""),
        stderr: reconnected(server),
      });
      assertEquals(server.stats.brokenReplies.length, 1);
      assert(server.stats.brokenReplies[0].fragments > 0, "the broken reply carried output");
      // the client sent the same Receive again and the host answered with the reply it kept
      assertEquals(server.stats.robust.retransmissions, 1);
      assertEquals(server.stats.robust.replayed, 1);
      assertEquals(server.stats.robust.unknownRetransmissions, 0);
      assertEquals(server.shells(), []);
    });
  });
}

Deno.test("remote invoke over winrm with Basic over https: a reply cut mid-way is taken again, unsealed, once", async () => {
  await withServer({ https: true, breakReceiveReply: { nth: 2, at: "middle" } }, async (server, home, base) => {
    const run = await runRemote(
      [
        "invoke",
        ...base,
        "--use-ssl",
        "--authentication",
        "Basic",
        "--skip-ca-check",
        "--",
        '1..12 | % { "line $_"; Start-Sleep -Milliseconds 20 }',
      ],
      { env: envOf(home) },
    );
    assertEquals(run, {
      code: 0,
      stdout: Array.from({ length: 12 }, (_, i) => `line ${i + 1}\n`).join(""),
      stderr: reconnected(server),
    });
    assertEquals([server.stats.brokenReplies.length, server.stats.robust.replayed], [1, 1]);
    assertEquals(server.stats.encryptedRequests, 0);
  });
});

// MS-WSMV 3.1.4.1.39: Send, Command and Signal are robust operations too, so input, a new pipeline or a stop whose
// connection broke is sent again as the same operation and applied once, whether the host had read it or not
for (const at of ["unread", "lost"] as const) {
  const how = at === "unread" ? "before the host reads it" : "after the host applied it, its reply lost";
  Deno.test(`remote invoke over winrm: piped input whose Send breaks ${how} arrives exactly once`, async () => {
    await withServer({ breakReply: { op: "Send", nth: 1, at } }, async (server, home, base) => {
      // the first line goes alone; the rest, and the end of input, only once stderr says the connection broke, so
      // the pipeline cannot end before the broken Send was sent again (Sends to a pipeline go one after another)
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", MAIN, "invoke", ...base, "--", "$input | % { $_.ToUpper() }"],
        env: { ...envOf(home), SSH_AUTH_SOCK: "" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        const stdin = child.stdin.getWriter();
        await stdin.write(new TextEncoder().encode("one\n"));
        const stdout = new Response(child.stdout).text();
        let stderr = "";
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
          const first = !stderr.includes("(Ctrl-C gives up)\n");
          stderr += chunk;
          if (first && stderr.includes("(Ctrl-C gives up)\n")) {
            await stdin.write(new TextEncoder().encode("two\nthree\n"));
            await stdin.close();
          }
        }
        assertEquals({ code: (await child.status).code, stdout: await stdout, stderr }, {
          code: 0,
          stdout: "ONE\nTWO\nTHREE\n",
          stderr: reconnected(server),
        });
      } finally {
        clearTimeout(timer);
      }
      assertEquals(server.stats.brokenRequests, [{ op: "Send", at }]);
      // the same operation again: the host answered a retransmission of one it kept with the kept reply, and took
      // one it never read as new
      assertEquals(server.stats.robust.retransmissions, 1);
      assertEquals(
        [server.stats.robust.replayed, server.stats.robust.unknownRetransmissions],
        at === "lost" ? [1, 0] : [0, 1],
      );
      assertEquals(server.shells(), []);
    });
  });

  Deno.test(`remote enter over winrm: a typed line whose Command breaks ${how} runs exactly once`, async () => {
    await withServer({ breakReply: { op: "Command", nth: 1, at } }, async (server, home, base) => {
      const run = await runRemote(["enter", ...base], {
        env: envOf(home),
        stdin: "'hello'\nexit 3\n",
      });
      assertEquals(run, {
        code: 3,
        stdout: "[127.0.0.1]: PS C:\\Users\\alice\\Documents> hello\n" +
          "[127.0.0.1]: PS C:\\Users\\alice\\Documents> ",
        stderr: reconnected(server),
      });
      assertEquals(server.stats.brokenRequests, [{ op: "Command", at }]);
      // every pipeline started once: the retransmitted Command started none
      assertEquals(server.stats.psrpPipelines.length, new Set(server.stats.psrpPipelines).size);
      assertEquals(server.stats.robust.retransmissions, 1);
      assertEquals(
        [server.stats.robust.replayed, server.stats.robust.unknownRetransmissions],
        at === "lost" ? [1, 0] : [0, 1],
      );
      assertEquals(server.shells(), []);
    });
  });
}

Deno.test("remote enter over winrm in a terminal: a Ctrl-C whose Signal reply is lost stops the pipeline once", async () => {
  await withServer({ breakReply: { op: "Signal", nth: 1, at: "lost" } }, async (server, home, base) => {
    await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", ...base], {
      cols: 200,
      rows: 30,
      env: envOf(home),
    });
    const prompt = /\[127\.0\.0\.1\]: PS C:\\Users\\alice\\Documents> $/;
    await pty.waitFor(prompt, 30_000);
    pty.write('1..100 | % { "line $_"; Start-Sleep -Milliseconds 100 }\r');
    await pty.waitFor(/^line 2\r$/m, 30_000);
    pty.write("\x03");
    await pty.waitFor(new RegExp(`remote: reconnected to 127\\.0\\.0\\.1:${server.port}`), 30_000);
    await pty.waitFor(prompt, 30_000);
    assert(!pty.output().includes("line 100"));
    pty.write("exit 5\r");
    assertEquals((await pty.exited).code, 5);
    assertEquals(server.stats.brokenRequests, [{ op: "Signal", at: "lost" }]);
    // the stop reached the host once; the retransmission got the reply it kept
    assertEquals(server.stats.signals.filter((s) => s === CTRL_C).length, 1);
    assertEquals([server.stats.robust.retransmissions, server.stats.robust.replayed], [1, 1]);
    assertEquals(server.shells(), []);
  });
});

Deno.test("remote invoke over winrm: a host out of reach for several attempts is retried with growing waits, one notice each way", async () => {
  // the 3rd Receive breaks; the next 2 connections are closed at once, as a network that is down
  await withServer({ dropReceive: 3, outage: 2 }, async (server, home, base) => {
    const run = await runRemote(
      ["invoke", ...base, "--", '1..30 | % { "line $_"; Start-Sleep -Milliseconds 20 }'],
      { env: envOf(home) },
    );
    assertEquals(run, {
      code: 0,
      stdout: Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join(""),
      stderr: reconnected(server),
    });
    assertEquals(server.stats.refusedRequests, 2);
    assertEquals(server.stats.byAction.Reconnect, 1, "one Reconnect got through, after two that could not");
    assertEquals(server.shells(), []);
  });
});

Deno.test("remote enter over winrm in a terminal: Ctrl-C while a typed line waits for the host gives up as lost (250)", async () => {
  // the typed line's Command (the 2nd: the prompt's is the 1st) never reaches the host, which then stays out of
  // reach; the default window is 4 minutes
  await withServer(
    { breakReply: { op: "Command", nth: 2, at: "unread" }, outage: 100_000 },
    async (server, home, base) => {
      await using pty = await spawnInPty(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "enter", ...base], {
        cols: 200,
        rows: 30,
        env: envOf(home),
      });
      await pty.waitFor(/\[127\.0\.0\.1\]: PS C:\\Users\\alice\\Documents> $/, 30_000);
      pty.write("'typed'\r");
      await pty.waitFor(/\(Ctrl-C gives up\)\r$/m, 30_000);
      pty.write("\x03");
      // without the Ctrl-C it would wait 4 minutes: a minute bounds the test (SIGKILL, not 250)
      const bound = setTimeout(() => pty.kill("SIGKILL"), 60_000);
      try {
        assertEquals((await pty.exited).code, 250);
      } finally {
        clearTimeout(bound);
      }
      const host = `127\\.0\\.0\\.1:${server.port}`;
      match(
        pty.output(),
        new RegExp(
          `remote: lost the connection to ${host}; reconnecting for up to 4 minutes \\(Ctrl-C gives up\\)\\r\\n` +
            `remote: Command to ${host} failed: [^\\r\\n]+\\r\\n` +
            `hint: the shell is still on ${host} until its idle timeout ends it\\r\\n`,
        ),
      );
      assert(!pty.output().includes("reconnected"));
    },
  );
});
