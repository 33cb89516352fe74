/**
 * One `remote invoke` across transports: a real sshd and the WS-Man test server of tests/winrm_server.ts
 * (MS-WSMV, MS-NLMP; no Windows host can run here). Each transport takes its own options.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { startSshd } from "./harness/sshd.ts";
import { runRemote, sshOptions, tempHome } from "./run_remote.ts";
import { startWinrmServer } from "./winrm_server.ts";
import { startDockerEngine } from "./harness/docker_engine.ts";

Deno.test("remote invoke runs one command over ssh and winrm in one run, each with its own options", async () => {
  await using sshd = await startSshd();
  const winrm = await startWinrmServer({});
  try {
    await using home = await tempHome();
    const knownHosts = `${home.dir}/known_hosts`;
    await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
    const winrmPort = new URL(winrm.url).port;
    const run = await runRemote([
      "invoke",
      ...sshOptions(sshd, knownHosts),
      "--no-reuse",
      `${sshd.user}@127.0.0.1`,
      `winrm://WIN01%5Calice@127.0.0.1:${winrmPort}`,
      "--",
      "echo",
      "mixed",
    ], { env: { ...home.env, REMOTE_WINRM_PASSWORD: "Secr3t-pässword" } });
    assertEquals(run.code, 0, run.stderr);
    match(run.stdout, new RegExp(`^\\[${sshd.user}@127\\.0\\.0\\.1\\] mixed$`, "m"));
    // a WinRM host runs the command in PowerShell, as Invoke-Command does (no cmd.exe CR LF)
    match(run.stdout, new RegExp(`^\\[winrm://WIN01%5Calice@127\\.0\\.0\\.1:${winrmPort}\\] mixed$`, "m"));
    assertEquals([winrm.shells().length, winrm.psShells.size, winrm.stats.psrpCreates], [0, 0, 1]);

    const unused = await runRemote(["invoke", "--region", "eu-west-1", "a.invalid", "b.invalid", "--", "true"], {
      env: home.env,
    });
    assertEquals(unused.code, 230);
    match(unused.stderr, /^remote: --region is an option of ssm, not of ssh\n/);
  } finally {
    await winrm.close();
  }
});

Deno.test("remote invoke runs one command on an ssh host and in containers in one run", async () => {
  await using sshd = await startSshd();
  await using engine = await startDockerEngine();
  await engine.createContainer("mix1", { env: ["WHO=mix1"] });
  const id = await engine.createContainer("mix2", { env: ["WHO=mix2"] });
  await using home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  const run = await runRemote([
    "invoke",
    ...sshOptions(sshd, knownHosts),
    "--no-reuse",
    "--docker-host",
    engine.host,
    `${sshd.user}@127.0.0.1`,
    "docker://mix1",
    `docker://${id}`,
    "--",
    'echo "${WHO:-ssh}"',
  ], { env: { ...home.env, DOCKER_HOST: "unix:///nonexistent.sock" } });
  assertEquals(run.code, 0, run.stderr);
  assertEquals(
    run.stdout.split("\n").filter((l) => l !== "").sort(),
    [
      `[${sshd.user}@127.0.0.1] ssh`,
      "[docker://mix1] mix1",
      `[docker://${id}] mix2`,
    ].sort(),
  );
});
