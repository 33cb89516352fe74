/**
 * WinRM through the real command line, against the WS-Man test server of tests/winrm_server.ts
 * (MS-WSMV, MS-NLMP; no Windows host can run here, so that server is the peer).
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { startWinrmServer } from "./winrm_server.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const PASSWORD = "Secr3t-pässword";

Deno.test("remote invoke --computer-name runs a command over NTLM-sealed http and passes its status", async () => {
  const server = await startWinrmServer({});
  try {
    await using home = await tempHome();
    const port = new URL(server.url).port;
    const env = { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD };
    const ok = await runRemote(
      ["invoke", "--computer-name", "127.0.0.1", "--port", port, "--credential", "WIN01\\alice", "--", "echo", "hello"],
      { env },
    );
    assertEquals(ok, { code: 0, stdout: "hello\r\n", stderr: "" });
    const viaScheme = await runRemote(
      ["invoke", `winrm://127.0.0.1:${port}`, "--credential", "alice@WIN01", "--", "echo", "scheme"],
      { env },
    );
    assertEquals(viaScheme.stdout, "scheme\r\n", viaScheme.stderr);
    assertEquals(server.stats.plainRequests, 0);
    assertEquals(server.shells().length, 0);
  } finally {
    await server.close();
  }
});

Deno.test("remote invoke over winrm with a wrong password exits 245", async () => {
  const server = await startWinrmServer({});
  try {
    await using home = await tempHome();
    const port = new URL(server.url).port;
    const run = await runRemote(
      ["invoke", "--computer-name", "127.0.0.1", "--port", port, "--credential", "WIN01\\alice", "--", "echo", "x"],
      { env: { ...home.env, REMOTE_WINRM_PASSWORD: "wrong" } },
    );
    assertEquals(run.code, 245);
    match(run.stderr, /^remote: .*\nhint: /);
    assertEquals(run.stderr.includes("wrong"), false, "the password never appears in errors");
  } finally {
    await server.close();
  }
});

Deno.test("remote enter over winrm without a terminal streams lines to cmd and returns its status", async () => {
  const server = await startWinrmServer({});
  try {
    await using home = await tempHome();
    const port = new URL(server.url).port;
    const run = await runRemote(
      ["enter", "--computer-name", "127.0.0.1", "--port", port, "--credential", "WIN01\\alice"],
      { env: { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD }, stdin: "echo hi\r\nexit /b 3\r\n" },
    );
    assertEquals(run.code, 3, run.stderr);
    match(run.stdout, /^hi\r$/m);
  } finally {
    await server.close();
  }
});

Deno.test("remote new on winrm says why cmd shells cannot be disconnected", async () => {
  await using home = await tempHome();
  const run = await runRemote(["new", "--computer-name", "win01"], { env: home.env });
  assertEquals(run.code, 234);
  assertEquals(
    run.stderr,
    "remote: transport winrm does not support disconnected sessions\n" +
      "hint: a WinRS cmd shell cannot be disconnected or reconnected (MS-WSMV 3.1.4.15); PSRP shells come later\n",
  );
});

Deno.test("remote invoke over winrm without a terminal or REMOTE_WINRM_PASSWORD says how to give the password", async () => {
  await using home = await tempHome();
  const run = await runRemote(
    ["invoke", "--computer-name", "win01.invalid", "--credential", "CORP\\ops", "--", "ver"],
    {
      env: home.env,
    },
  );
  assertEquals(run, {
    code: 230,
    stdout: "",
    stderr: "remote: no password for CORP\\ops@win01.invalid, and no terminal to ask on\n" +
      "hint: run remote in a terminal, or set REMOTE_WINRM_PASSWORD (see docs/winrm.md for its risk)\n",
  });
});
