/**
 * SSH through SSH with `--via` (the `direct-tcpip` half of the SSH transport's dial), through the CLI against two
 * real sshd servers on loopback: the via host (named in ssh_config, as a bastion is) and the target, each with its own
 * host keys checked under its own name.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startSshd } from "./harness/sshd.ts";
import { runRemote, tempHome } from "./run_remote.ts";

Deno.test({
  name: "remote invoke host --via bastion reaches the host over the bastion's direct-tcpip channel",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using home = await tempHome();
    await using bastion = await startSshd();
    await using target = await startSshd({ config: "AllowTcpForwarding no" });
    await Deno.mkdir(`${home.dir}/.ssh`, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(
      `${home.dir}/.ssh/known_hosts`,
      `${bastion.knownHostsLine()}\n${target.knownHostsLine()}\n`,
    );
    await Deno.writeTextFile(
      `${home.dir}/.ssh/config`,
      `Host bastion\n  HostName 127.0.0.1\n  Port ${bastion.port}\n  IdentityFile ${bastion.userKey}\n`,
    );
    const run = await runRemote(
      [
        "invoke",
        `${target.user}@127.0.0.1:${target.port}`,
        "--via",
        "bastion",
        "-i",
        target.userKey,
        "--",
        "echo through; exit 6",
      ],
      { env: home.env },
    );
    assertEquals(run, { code: 6, stdout: "through\n", stderr: "" });
    const forwarded = (await bastion.log()).split("\n").filter((l) =>
      l.includes("server_request_direct_tcpip") && l.includes(`port ${target.port}`)
    );
    assert(forwarded.length === 1, "the bastion opened no direct-tcpip channel to the target");

    // the target's own AllowTcpForwarding is not involved; a bastion whose sshd forbids forwarding is 234
    await using closed = await startSshd({ config: "AllowTcpForwarding no" });
    await Deno.writeTextFile(`${home.dir}/.ssh/known_hosts`, `${closed.knownHostsLine()}\n`, { append: true });
    await Deno.writeTextFile(
      `${home.dir}/.ssh/config`,
      `Host closed\n  HostName 127.0.0.1\n  Port ${closed.port}\n  IdentityFile ${closed.userKey}\n`,
      { append: true },
    );
    const refused = await runRemote(
      [
        "invoke",
        `${target.user}@127.0.0.1:${target.port}`,
        "--via",
        `ssh://${closed.user}@closed`,
        "-i",
        target.userKey,
        "--",
        "echo no",
      ],
      { env: home.env },
    );
    assertEquals([refused.code, refused.stdout], [234, ""]);
    assert(refused.stderr.includes(`refused to forward to 127.0.0.1:${target.port}`), refused.stderr);
  },
});
