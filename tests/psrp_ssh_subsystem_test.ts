/**
 * plugins/psrp over the SSH `powershell` subsystem of the harness's real sshd (`Subsystem powershell … -sshs
 * -NoLogo`, as PowerShell's SSH remoting documentation configures it), reached with OpenSSH's own client
 * (`ssh -s`). The remote transport's integration comes later; this pins that the library speaks to pwsh in
 * `-sshs` mode over a real SSH channel.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { PipelineState } from "../plugins/psrp/mod.ts";
import { startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { findPwsh, runScript, withPwsh } from "./psrp_pwsh.ts";

Deno.test("RunspacePool opens through ssh -s powershell (pwsh -sshs) and runs pipelines", async () => {
  const pwsh = await findPwsh();
  const subsystem = [
    pwsh.program === "dotnet" ? "/usr/bin/env dotnet" : pwsh.program,
    ...pwsh.prefix,
    "-sshs",
    "-NoLogo",
  ];
  await using sshd = await startSshd({ config: `Subsystem powershell ${subsystem.join(" ")}` });
  const knownHosts = `${sshd.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  const args = [
    "-F",
    "/dev/null",
    "-i",
    sshd.userKey,
    "-p",
    String(sshd.port),
    "-l",
    sshd.user,
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-s",
    sshd.host,
    "powershell",
  ]; // deno-fmt-ignore
  await withLogOnFailure(sshd, async () => {
    await withPwsh({ command: { program: "ssh", args } }, async ({ pool }) => {
      assertEquals(pool.server?.protocolVersion, "2.4");
      const r = await runScript(pool, "1+1; [Environment]::GetCommandLineArgs() -join ' '");
      assertEquals(r.output[0], 2);
      match(String(r.output[1]), /-sshs/);
      const stopped = pool.createPipeline({ commands: [{ cmd: "'go'; Start-Sleep 100", isScript: true }], output: () => stopped.stop() });
      assertEquals((await stopped.done).state, PipelineState.Stopped);
      assertEquals((await runScript(pool, "'after stop'")).output, ["after stop"]);
    });
  });
});
