/**
 * `remote invoke --in-disconnected-session` end to end (Invoke-Command -InDisconnectedSession): the real
 * CLI against a real OpenSSH sshd and the real tmux on the host. The command starts in a new persistent
 * session on each host, invoke returns without waiting for it, and `receive`, `get` and `remove` take
 * the sessions from there.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import type { SshdServer } from "./harness/sshd.ts";
import { eventually, tmux, withTmuxHost } from "./harness/tmux_host.ts";
import { runRemote, type TempHome, tempHome } from "./run_remote.ts";

/** A client of one sshd: a HOME whose ~/.ssh/config has aliases h01, h02 of the sshd; this test's tmux socket. */
interface Client extends AsyncDisposable {
  home: TempHome;
  /** the options that reach the harness sshd by its address: -p, -i, -o UserKnownHostsFile */
  ssh: string[];
  run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function client(sshd: SshdServer, socket: string): Promise<Client> {
  const home = await tempHome();
  const knownHosts = `${home.dir}/known_hosts`;
  await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
  await Deno.mkdir(`${home.dir}/.ssh`, { mode: 0o700 });
  const lines = ["h01", "h02"].flatMap((h) => [`Host ${h}`, "  HostName 127.0.0.1", `  Port ${sshd.port}`]);
  lines.push("Host down1", "  HostName 127.0.0.1", `  Port ${refusedPort()}`);
  lines.push("Host *", `  User ${sshd.user}`, `  IdentityFile ${sshd.userKey}`, "  IdentitiesOnly yes");
  lines.push(`  UserKnownHostsFile ${knownHosts}`, "");
  await Deno.writeTextFile(`${home.dir}/.ssh/config`, lines.join("\n"), { mode: 0o600 });
  const env = { ...home.env, REMOTE_TMUX_SOCKET: socket };
  return {
    home,
    ssh: ["-p", String(sshd.port), "-i", sshd.userKey, "-o", `UserKnownHostsFile=${knownHosts}`],
    run: (...args: string[]) => runRemote(args, { env }),
    [Symbol.asyncDispose]: () => home[Symbol.asyncDispose](),
  };
}

/** A loopback port nobody listens on. */
function refusedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** One test's host: sshd plus a tmux socket of its own. */
function withHostFor(fn: (sshd: SshdServer, socket: string) => Promise<void>): Promise<void> {
  return withTmuxHost(fn, { prefix: "remote-ids" });
}

/** Everything `receive` prints for `name` until `text` has appeared. */
async function receiveUntil(c: Client, name: string, text: string): Promise<string> {
  let output = "";
  await eventually(`${text} in receive --name ${name}`, async () => {
    const r = await c.run("receive", "--name", name);
    assertEquals(r.code, 0, r.stderr);
    output += r.stdout;
    return output.includes(text) ? true : undefined;
  });
  return output;
}

/** A command that waits for `gate` to exist, then prints DONE-42 (computed, so the echoed text differs). */
function gatedCommand(gate: string): string {
  return `while [ ! -e ${gate} ]; do sleep 0.1; done; echo DONE-$((40+2))`;
}

const HEADER = /^Id +Name +ComputerName +Transport +State +ConfigurationName +Availability\n-+ /;

Deno.test("remote invoke --in-disconnected-session returns at once with a Disconnected row; receive, get, remove follow", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    const gate = `${c.home.dir}/gate`;
    const started = await c.run(
      "invoke",
      "127.0.0.1",
      ...c.ssh,
      "--in-disconnected-session",
      "--session-name",
      "Nightly",
      "--",
      gatedCommand(gate),
    );
    // the command cannot have ended: its gate does not exist yet
    assertEquals([started.code, started.stderr], [0, ""]);
    match(started.stdout, HEADER);
    match(started.stdout, /\n1 +Nightly +127\.0\.0\.1 +ssh +Disconnected +None\n$/);

    const mine = await c.run("get");
    assertEquals(mine.code, 0, mine.stderr);
    match(mine.stdout, /\n1 +Nightly +127\.0\.0\.1 +ssh +Disconnected +None\n$/);
    const onHost = await c.run("get", "--computer-name", "127.0.0.1", ...c.ssh, "--json");
    assertEquals(onHost.code, 0, onHost.stderr);
    const json = JSON.parse(onHost.stdout);
    assertEquals([json.name, json.state, json.availability, json.stale], ["Nightly", "Disconnected", "None", false]);

    await Deno.writeTextFile(gate, "");
    const output = await receiveUntil(c, "Nightly", "DONE-42");
    assert(!output.includes("echo DONE"), `the command was typed into a shell, not run: ${JSON.stringify(output)}`);
    // the session outlives its command, as a PSSession does
    assertEquals((await tmux(socket, "has-session", "-t", "=Nightly")).code, 0);

    const removed = await c.run("remove", "--name", "Nightly");
    assertEquals(removed.code, 0, removed.stderr);
    // -o UserKnownHostsFile came back from the registry: said, not silent (docs/sessions.md, Trust)
    match(removed.stderr, /^remote: session Nightly uses options recorded at its creation: UserKnownHostsFile=\S+\n$/);
    assertEquals((await tmux(socket, "list-sessions")).stdout, "");
    assertEquals((await c.run("get")).stdout, "");
  });
});

Deno.test("remote invoke --in-disconnected-session on two hosts names the sessions apart; --json; a host down", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    const gate = `${c.home.dir}/gate`;
    const started = await c.run(
      "invoke",
      "h01",
      "h02",
      "--in-disconnected-session",
      "--",
      gatedCommand(gate),
    );
    assertEquals([started.code, started.stderr], [0, ""]);
    match(started.stdout, HEADER);
    const rows = started.stdout.trim().split("\n").slice(2).map((l) => l.split(/ +/));
    assertEquals(rows.map((r) => [r[2], r[3], r[4], r[5]]), [
      ["h01", "ssh", "Disconnected", "None"],
      ["h02", "ssh", "Disconnected", "None"],
    ]);
    assertEquals(rows.map((r) => r[1]).sort(), ["Session1", "Session2"]);
    const sessions = (await tmux(socket, "list-sessions", "-F", "#{session_name}")).stdout;
    assertEquals(sessions.trim().split("\n").sort(), ["Session1", "Session2"]);

    await Deno.writeTextFile(gate, "");
    for (const name of ["Session1", "Session2"]) await receiveUntil(c, name, "DONE-42");

    // --json: one line per session, as remote get --json prints them
    const third = await c.run("invoke", "h01", "--in-disconnected-session", "--json", "--", "true");
    assertEquals([third.code, third.stderr], [0, ""]);
    const record = JSON.parse(third.stdout);
    assertEquals([record.name, record.computerName, record.state], ["Session3", "h01", "Disconnected"]);

    // a host that cannot be reached is reported; the others' sessions are still made and shown
    const partly = await c.run("invoke", "down1", "h02", "--in-disconnected-session", "--", "true");
    assertEquals(partly.code, 241, partly.stderr);
    match(partly.stdout, /\n\d +Session4 +h02 +ssh +Disconnected +None\n$/);
    match(partly.stderr, /^\[down1\] remote: connection refused/m);
    match(partly.stderr, /^remote: 1 of 2 hosts failed: down1 \(connection refused/m);

    const removed = await c.run("remove", "--name", "Session*");
    assertEquals([removed.code, removed.stderr], [0, ""]);
    assertEquals((await tmux(socket, "list-sessions")).stdout, "");
    assertEquals((await c.run("get")).stdout, "");
  });
});

Deno.test("remote invoke --in-disconnected-session refuses a container target before creating anything", async () => {
  await withHostFor(async (sshd, socket) => {
    await using c = await client(sshd, socket);
    // containers keep no sessions of their own (winrm does since PowerShell sessions: tests/winrm_psrp_lifecycle_test.ts)
    const expected = "remote: transport container does not support disconnected sessions\n" +
      "hint: see which transports can: remote plugin list\n";
    const alone = await c.run("invoke", "--container-id", "web1", "--in-disconnected-session", "--", "true");
    assertEquals([alone.code, alone.stdout, alone.stderr], [234, "", expected]);
    // with a host that could: still nothing is created there
    const mixed = await c.run(
      "invoke",
      "h01",
      "container://web1",
      "--in-disconnected-session",
      "--",
      "true",
    );
    assertEquals([mixed.code, mixed.stdout, mixed.stderr], [234, "", expected]);
    assertEquals((await c.run("get")).stdout, "");
    assertEquals((await tmux(socket, "list-sessions")).code, 1);

    const stray = await c.run("invoke", "h01", "--session-name", "X", "--", "true");
    assertEquals([stray.code, stray.stderr], [
      230,
      "remote: --session-name names the sessions of --in-disconnected-session\n" +
      "hint: add --in-disconnected-session, or drop --session-name\n",
    ]);
  });
});
