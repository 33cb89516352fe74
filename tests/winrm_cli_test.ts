/**
 * WinRM through the real command line, against the WS-Man test server of tests/winrm_server.ts
 * (MS-WSMV, MS-NLMP; no Windows host can run here, so that server is the peer).
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { startWinrmServer, type WinrmServerOptions } from "./winrm_server.ts";
import { runRemote, tempHome } from "./run_remote.ts";

const PASSWORD = "Secr3t-pässword";
/** the WinRS command shell: these tests are about WinRS and the HTTP layer, not PowerShell (winrm_psrp_cli_test.ts) */
const CMD = ["--configuration-name", "cmd"];

Deno.test("remote invoke --computer-name runs a command over NTLM-sealed http and passes its status", async () => {
  const server = await startWinrmServer({});
  try {
    await using home = await tempHome();
    const port = new URL(server.url).port;
    const env = { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD };
    const ok = await runRemote(
      [
        "invoke",
        "--computer-name",
        "127.0.0.1",
        "--port",
        port,
        "--credential",
        "WIN01\\alice",
        ...CMD,
        "--",
        "echo",
        "hello",
      ],
      { env },
    );
    assertEquals(ok, { code: 0, stdout: "hello\r\n", stderr: "" });
    const viaScheme = await runRemote(
      ["invoke", `winrm://127.0.0.1:${port}`, "--credential", "alice@WIN01", ...CMD, "--", "echo", "scheme"],
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
      ["enter", "--computer-name", "127.0.0.1", "--port", port, "--credential", "WIN01\\alice", ...CMD],
      { env: { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD }, stdin: "echo hi\r\nexit /b 3\r\n" },
    );
    assertEquals(run.code, 3, run.stderr);
    match(run.stdout, /^hi\r$/m);
  } finally {
    await server.close();
  }
});

Deno.test("remote new on winrm with --configuration-name cmd says a WinRS shell cannot be disconnected", async () => {
  const server = await startWinrmServer({});
  try {
    await using home = await tempHome();
    const run = await runRemote(
      ["new", "--computer-name", "127.0.0.1", "--port", String(server.port), "--credential", "WIN01\\alice", ...CMD],
      { env: { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD } },
    );
    assertEquals(run.code, 230);
    assertEquals(
      run.stderr,
      "remote: a WinRS cmd shell cannot be disconnected (MS-WSMV 3.1.4.15)\n" +
        "hint: persistent sessions on Windows are PowerShell sessions: drop --configuration-name cmd\n",
    );
    assertEquals(server.shells(), []);
  } finally {
    await server.close();
  }
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
      "hint: run remote in a terminal, or set REMOTE_WINRM_PASSWORD (see remote help winrm for its risk)\n",
  });
});

/** `remote invoke` with Basic over http against a host whose ANSI code page is `hostCharset` */
async function basicInvoke(
  hostCharset: string,
  user: { name: string; password: string },
  extra: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string; where: string; requests: number }> {
  const opts: WinrmServerOptions = {
    allowUnencrypted: true,
    auth: ["basic"],
    basicCharset: hostCharset,
    user: { ...user, domain: "WIN01" },
  };
  const server = await startWinrmServer(opts);
  try {
    await using home = await tempHome();
    const port = String(server.port);
    const run = await runRemote(
      [
        "invoke",
        "--computer-name",
        "127.0.0.1",
        "--port",
        port,
        "--credential",
        user.name,
        "--authentication",
        "Basic",
        "--allow-unencrypted",
        ...CMD,
        ...extra,
        "--",
        "echo",
        "hello",
      ],
      { env: { ...home.env, REMOTE_WINRM_PASSWORD: user.password } },
    );
    return { ...run, where: `127.0.0.1:${port}`, requests: server.stats.requests };
  } finally {
    await server.close();
  }
}

Deno.test("remote sends Basic credentials in windows-1252 by default, as a Western European Windows decodes them", async () => {
  const run = await basicInvoke("windows-1252", { name: "jörg", password: "pässwörd€" });
  assertEquals({ code: run.code, stdout: run.stdout, stderr: run.stderr }, {
    code: 0,
    stdout: "hello\r\n",
    stderr: "",
  });
});

Deno.test("remote --basic-charset sends Basic credentials in the host's code page", async () => {
  const cyrillic = { name: "Администратор", password: "пароль" };
  const run = await basicInvoke("windows-1251", cyrillic, ["--basic-charset", "windows-1251"]);
  assertEquals({ code: run.code, stdout: run.stdout, stderr: run.stderr }, {
    code: 0,
    stdout: "hello\r\n",
    stderr: "",
  });
  const utf8 = await basicInvoke("utf-8", { name: "jörg", password: "密码" }, ["--basic-charset", "utf-8"]);
  assertEquals(utf8.code, 0, utf8.stderr);
});

Deno.test("remote refuses Basic credentials the code page cannot encode, before connecting", async () => {
  const run = await basicInvoke("windows-1251", { name: "Администратор", password: "пароль" });
  assertEquals(run.code, 230);
  assertEquals(
    run.stderr,
    "remote: the user name has characters that windows-1252 cannot encode for Basic authentication\n" +
      "hint: pass --basic-charset with the host's ANSI code page (e.g. windows-1251 for Cyrillic), " +
      "or use --authentication Negotiate, which sends Unicode\n",
  );
  assertEquals(run.requests, 0);
  const pw = await basicInvoke("windows-1251", { name: "admin", password: "пароль" });
  assertEquals(
    pw.stderr.split("\n")[0],
    "remote: the password has characters that windows-1252 cannot encode for Basic authentication",
  );
  assertEquals(pw.stderr.includes("пароль"), false, "the password never appears in errors");
});

Deno.test("remote names the Basic charset when a host rejects non-ASCII credentials", async () => {
  // ä is 0xE4 in windows-1252, which a windows-1251 host reads as д
  const run = await basicInvoke("windows-1251", { name: "admin", password: "pässword" });
  assertEquals(run.code, 245);
  assertEquals(
    run.stderr,
    `remote: access denied for admin at ${run.where}\n` +
      "hint: the credentials are not ASCII and were sent in windows-1252; Windows decodes Basic credentials in its " +
      "ANSI code page: pass --basic-charset with the host's (e.g. windows-1251), or use --authentication Negotiate\n",
  );
});
