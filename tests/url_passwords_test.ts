/**
 * A password written in a URL or target (`http://alice:pw@host/wsman`, `winrm://bob:pw@host`) is never shown, through
 * the real command line: not in `[host]` prefixes, `--json` lines, failure summaries or usage errors. remote leaves it
 * out as git leaves credentials out of the URLs it prints, keeping the user name.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { freePort } from "./harness/process.ts";
import { startWinrmServer } from "./winrm_server.ts";
import { type RemoteRun, runRemote, tempHome } from "./run_remote.ts";

const PASSWORD = "Secr3t-pässword";
/** what the user wrote into the URLs; it must appear nowhere */
const URL_SECRET = "Url-S3cret";

function assertNoSecret(run: RemoteRun) {
  const all = run.stdout + run.stderr;
  assert(!all.includes(URL_SECRET) && !all.includes(encodeURIComponent(URL_SECRET)), `secret shown:\n${all}`);
}

Deno.test("remote invoke shows URLs without their password in [host] prefixes, --json lines and the failure summary", async () => {
  await using server = await startWinrmServer({});
  await using home = await tempHome();
  const env = { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD };
  const live = `http://alice:${URL_SECRET}@127.0.0.1:${server.port}/wsman`;
  const refusedPort = freePort();
  const refused = `winrm://bob:${URL_SECRET}2@127.0.0.1:${refusedPort}`;
  const shownLive = `http://alice@127.0.0.1:${server.port}/wsman`;
  const shownRefused = `winrm://bob@127.0.0.1:${refusedPort}`;

  const text = await runRemote(["invoke", live, refused, "--", "echo", "hello"], { env });
  assertNoSecret(text);
  assertEquals(text.code, 241, text.stderr);
  assertEquals(text.stdout, `[${shownLive}] hello\n`);
  match(text.stderr, new RegExp(`^\\[${shownRefused}\\] remote: .*refused`, "m"));
  match(text.stderr, new RegExp(`^remote: 1 of 2 hosts failed: ${shownRefused} \\(`, "m"));

  const json = await runRemote(["invoke", "--json", live, refused, "--", "echo", "hello"], { env });
  assertNoSecret(json);
  assertEquals(json.stderr, "");
  const lines = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(new Set(lines.map((l) => l.host)), new Set([shownLive, shownRefused]));
  assert(lines.some((l) => l.host === shownRefused && l.stream === "error" && l.exitCode === 241), json.stdout);
});

Deno.test("remote invoke --connection-uri with a password shows the URL without it in --json and errors", async () => {
  await using home = await tempHome();
  const port = freePort();
  const uri = `http://alice:${URL_SECRET}@127.0.0.1:${port}/wsman`;
  const env = { ...home.env, REMOTE_WINRM_PASSWORD: PASSWORD };
  const json = await runRemote(["invoke", "--json", "--connection-uri", uri, "--", "hostname"], { env });
  assertNoSecret(json);
  assertEquals(json.code, 241, json.stderr);
  assertEquals(JSON.parse(json.stdout).host, `http://alice@127.0.0.1:${port}/wsman`);

  // the password does not turn into part of the user name either: alice is asked for, not "alice:<secret>"
  const asked = await runRemote(["invoke", "--connection-uri", uri, "--", "hostname"], { env: home.env });
  assertNoSecret(asked);
  assertEquals(asked.code, 230);
  match(asked.stderr, /^remote: no password for alice@127\.0\.0\.1, and no terminal to ask on$/m);

  const malformed = await runRemote(["invoke", "--connection-uri", `alice:${URL_SECRET}@win01`, "--", "x"], { env });
  assertNoSecret(malformed);
  assertEquals(malformed.code, 230);
  match(malformed.stderr, /got "alice@win01"/);
});
