/**
 * The session registry is trusted only as ssh trusts ~/.ssh/config: through the real CLI, a registry
 * behind a symbolic link, or one another user owns or may write to, is refused before it is read, and
 * options that decide whom remote trusts are never taken from it silently.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { escapeRegExp, runRemote, type TempHome, tempHome } from "./run_remote.ts";

/** A registry of one session, `Job`, to a port nothing listens on, recorded with `options` as `-o`. */
async function registryIn(home: TempHome, options: Record<string, string> = {}): Promise<string> {
  const dir = `${home.env.XDG_STATE_HOME}/remote`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const now = new Date().toISOString();
  const session = {
    id: 1,
    instanceId: crypto.randomUUID(),
    name: "Job",
    computerName: "127.0.0.1",
    transport: "ssh",
    state: "Disconnected",
    availability: "None",
    createdAt: now,
    lastSeenAt: now,
    target: { host: "127.0.0.1", port },
    parameters: { Port: port, Options: options },
  };
  await Deno.writeTextFile(`${dir}/sessions.json`, JSON.stringify({ formatVersion: 1, sessions: [session] }), {
    mode: 0o600,
  });
  return `${dir}/sessions.json`;
}

Deno.test("a registry behind a symbolic link is refused, read or written, and the link is kept", async () => {
  await using home = await tempHome();
  const path = await registryIn(home);
  const real = `${home.dir}/elsewhere.json`;
  await Deno.rename(path, real);
  await Deno.symlink(real, path);
  const expected = `remote: session registry ${path} is a symbolic link (to ${real}); ` +
    "remote reads and replaces only a regular file\n" +
    `hint: replace the link by a copy of its file: cp ${path} ${path}.copy && mv ${path}.copy ${path}\n`;
  for (const args of [["get"], ["remove", "--id", "1"]]) {
    const r = await runRemote(args, { env: home.env });
    assertEquals([r.code, r.stdout, r.stderr], [232, "", expected]);
  }
  assertEquals((await Deno.lstat(path)).isSymlink, true);
});

Deno.test("a registry others may write to is refused before it is read", async () => {
  await using home = await tempHome();
  const path = await registryIn(home, { StrictHostKeyChecking: "no", UserKnownHostsFile: "/dev/null" });
  await Deno.chmod(path, 0o666);
  const r = await runRemote(["receive", "--name", "Job"], { env: home.env });
  assertEquals(r.code, 232);
  match(
    r.stderr,
    new RegExp(
      `^remote: session registry ${escapeRegExp(path)} has bad owner or permissions: writable by others ` +
        `\\(mode 0666\\)\\nhint: if it is yours: chown "\\$\\(id -u\\)" .+\\n$`,
    ),
  );
  if (Deno.uid() === 0) {
    // another user's file, even one only its owner may write to
    await Deno.chmod(path, 0o644);
    await Deno.chown(path, 65534, 65534);
    const other = await runRemote(["get"], { env: home.env });
    assertEquals(other.code, 232);
    match(other.stderr, /has bad owner or permissions: owned by uid 65534, not by you \(uid 0\), mode 0644\n/);
  }
});

Deno.test("a registry directory others may write to is refused, and not silently tightened", async () => {
  await using home = await tempHome();
  const path = await registryIn(home);
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.chmod(dir, 0o777);
  for (const args of [["get"], ["remove", "--id", "1"]]) {
    const r = await runRemote(args, { env: home.env });
    assertEquals(r.code, 232, r.stderr);
    match(
      r.stderr,
      new RegExp(
        `^remote: session registry directory ${escapeRegExp(dir)} has bad owner or permissions: ` +
          `writable by others \\(mode 0777\\)\\n`,
      ),
    );
  }
  assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o777);
});

Deno.test("options recorded with a session that decide whom remote trusts are named when they are used", async () => {
  await using home = await tempHome();
  await registryIn(home, { StrictHostKeyChecking: "no", UserKnownHostsFile: "/dev/null", Compression: "yes" });
  const r = await runRemote(["receive", "--name", "Job"], { env: home.env });
  assertEquals(r.code, 241, r.stderr);
  match(
    r.stderr,
    // Compression=yes is named by no trust notice, only by the warning that remote does not compress
    /^remote: session Job uses options recorded at its creation: StrictHostKeyChecking=no, UserKnownHostsFile=\/dev\/null\nwarning: compression \(-C\) is not available in remote; connecting uncompressed\nremote: /,
  );
});
