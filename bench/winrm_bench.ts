/**
 * Round trips and loopback latency of `remote invoke` over winrm, against tests/winrm_server.ts.
 *
 * Counts HTTP requests per invoke by operation (create, command, receive…, delete) and compares
 * with pywinrm's `run_cmd` sequence (open_shell, run_command, get_command_output's receive loop,
 * cleanup_command's Signal terminate, close_shell; reference A.3), which sends the same Create,
 * Command and Receives plus one Signal. NTLM's two handshake requests are counted apart: both
 * clients pay them once per connection.
 *
 * The PowerShell scenario runs a script as `remote invoke --computer-name` does (a PowerShell session, PSRP in
 * a WS-Man shell: Create with creationXml, Receive until the pool is open, Command + Receive per pipeline,
 * Delete) and compares with pypsrp's sequence for one script as recorded against Windows
 * (tests/tests_pypsrp/responses/test_psrp_multiple_invocations.yml: Create, two Receives until the pool
 * opened, Command, Receive until Done, Signal terminate, Delete).
 *
 * Run: deno run --allow-all bench/winrm_bench.ts
 *
 * @module
 */
import type { OpenContext } from "../plugins/mod.ts";
import { invokeScript } from "../plugins/psrp/mod.ts";
import { open } from "../transports/winrm/mod.ts";
import { startWinrmServer, type WinrmServer } from "../tests/winrm_server.ts";

const RUNS = 20;

function ctxFor(s: WinrmServer): OpenContext {
  return {
    target: { transport: "winrm", host: "127.0.0.1", port: s.port, display: s.url },
    parameters: { ConnectionUri: s.url, Credential: "WIN01\\alice" },
    signal: AbortSignal.timeout(60_000),
    prompt: { interactive: true, ask: () => Promise.resolve("Secr3t-pässword") },
    notice: () => {},
  };
}

async function scenario(name: string, command: string, closeStdin: boolean) {
  const s = await startWinrmServer();
  const times: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await using ch = await open(ctxFor(s), { kind: "exec", command });
      if (closeStdin) await ch.stdin.close();
      await Promise.all([new Response(ch.stdout).arrayBuffer(), new Response(ch.stderr).arrayBuffer(), ch.exit]);
      times.push(performance.now() - t0);
    }
  } finally {
    await s.close();
  }
  const st = s.stats;
  const per = (n: number | undefined) => (n ?? 0) / RUNS;
  const ops = st.requests - 2 * st.handshakes;
  const receives = per(st.byAction.Receive);
  const pywinrm = 1 + 1 + receives + 1 + 1 + (closeStdin ? per(st.byAction.Send) : 0);
  times.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(34)} ours: ${(ops / RUNS).toFixed(1)} requests (create ${per(st.byAction.Create)}, command ${
      per(st.byAction.Command)
    }, send ${per(st.byAction.Send)}, receive ${receives}, signal ${per(st.byAction.Signal)}, delete ${
      per(st.byAction.Delete)
    }) + ${(2 * st.handshakes / RUNS).toFixed(1)} NTLM handshake, ${(st.connections / RUNS).toFixed(1)} connections;` +
      ` pywinrm sequence: ${pywinrm.toFixed(1)} + 2 handshake; median ${times[RUNS >> 1].toFixed(1)} ms`,
  );
}

await scenario("invoke ipconfig (stdin left open)", "ipconfig", false);
await scenario("invoke ipconfig (stdin closed)", "ipconfig", true);
await scenario("invoke timeout /t 1", "timeout /t 1", false);

async function powershell(name: string, script: string) {
  const s = await startWinrmServer();
  const times: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await using ch = await open(ctxFor(s), { kind: "subsystem", name: "Microsoft.PowerShell" });
      await invokeScript({
        readable: ch.stdout,
        writable: ch.stdin,
        script,
        format: "text",
        stdout: new WritableStream(),
        stderr: new WritableStream(),
      });
      await ch.exit;
      times.push(performance.now() - t0);
    }
  } finally {
    await s.close();
  }
  const st = s.stats;
  const per = (n: number | undefined) => (n ?? 0) / RUNS;
  const ops = st.requests - 2 * st.handshakes;
  times.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(34)} ours: ${(ops / RUNS).toFixed(1)} requests (create ${per(st.byAction.Create)}, command ${
      per(st.byAction.Command)
    }, send ${per(st.byAction.Send)}, receive ${per(st.byAction.Receive)}, signal ${per(st.byAction.Signal)}, delete ${
      per(st.byAction.Delete)
    }) + ${(2 * st.handshakes / RUNS).toFixed(1)} NTLM handshake, ${(st.connections / RUNS).toFixed(1)} connections;` +
      ` pypsrp sequence (one pipeline): 7 + 2 handshake; median ${times[RUNS >> 1].toFixed(1)} ms`,
  );
}

await powershell("invoke PowerShell 'hello'", "'hello'");
