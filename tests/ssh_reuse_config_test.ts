/**
 * The reuse master and ssh_config edits: the real CLI against a real OpenSSH sshd on loopback, compared
 * with what OpenSSH's own `ssh` does in the same situation.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startSshd, withLogOnFailure } from "./harness/sshd.ts";
import { runRemote, tempHome } from "./run_remote.ts";

Deno.test("remote invoke sees an ssh_config edit made while a reuse master holds the old connection", async () => {
  await using sshd = await startSshd();
  await using home = await tempHome();
  await withLogOnFailure(sshd, async () => {
    await Deno.mkdir(`${home.dir}/.ssh`, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${home.dir}/.ssh/known_hosts`, sshd.knownHostsLine() + "\n");
    const config = `${home.dir}/ssh_config`;
    const write = (user: string) =>
      Deno.writeTextFile(
        config,
        `Host box\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${user}\n  IdentityFile ${sshd.userKey}\n`,
      );
    await write(sshd.user);
    const first = await runRemote(["invoke", "box", "-F", config, "--", "id -un"], { env: home.env });
    assertEquals([first.code, first.stdout], [0, `${sshd.user}\n`], first.stderr);
    // as ssh would, the next run logs in as the user the config now names (and is refused)
    await write("no-such-user-here");
    const second = await runRemote(["invoke", "box", "-F", config, "--", "id -un"], { env: home.env });
    assertEquals(second.stdout, "", second.stderr);
    assertEquals(second.code, 245, second.stderr);
    assert(/permission denied for no-such-user-here@127\.0\.0\.1/.test(second.stderr), second.stderr);
  });
});
