/**
 * Starts a real dropbear SSH server on 127.0.0.1 for tests.
 *
 * Dropbear has no AuthorizedKeysFile option: it reads `~/.ssh/authorized_keys` from the home directory
 * that the password database names. To keep the real home untouched, dropbear runs in a private mount
 * namespace (`unshare -m` as root, a user namespace otherwise) where a temp directory is bind-mounted over
 * that home.
 *
 * @example
 * ```ts
 * import { startDropbear } from "./dropbear.ts";
 * await using server = await startDropbear();
 * console.log(server.port);
 * ```
 *
 * @module
 */
import * as os from "node:os";
import { Child, freePort, mountNamespacePrefix, requireProgram, run } from "./process.ts";
import { shellQuote } from "../../plugins/mod.ts";
import { listening, serverHandle, type SshdServer } from "./sshd.ts";

/** Where dropbear lives (Debian's dropbear-bin). */
export const DROPBEAR = "/usr/sbin/dropbear";

/** Starts dropbear with an ed25519 host key and an authorized ed25519 user key. */
export async function startDropbear(options: { authorizedKeys?: string[] } = {}): Promise<SshdServer> {
  await requireProgram(DROPBEAR, "dropbear-bin");
  await requireProgram("/usr/bin/dropbearkey", "dropbear-bin");
  await requireProgram("/usr/bin/unshare", "util-linux");
  const dir = await Deno.makeTempDir({ prefix: "remote-dropbear-" });
  try {
    const hostKeyFile = `${dir}/host_ed25519`;
    const out = await run("dropbearkey", ["-t", "ed25519", "-f", hostKeyFile]);
    const publicLine = out.split("\n").find((l) => l.startsWith("ssh-ed25519 "))?.trim() ?? "";
    const userKey = `${dir}/id_ed25519`;
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "remote-test", "-f", userKey]);
    const home = `${dir}/home`;
    await Deno.mkdir(`${home}/.ssh`, { recursive: true, mode: 0o700 });
    await Deno.chmod(home, 0o700);
    const authorized = [(await Deno.readTextFile(`${userKey}.pub`)).trim(), ...(options.authorizedKeys ?? [])];
    await Deno.writeTextFile(`${home}/.ssh/authorized_keys`, authorized.join("\n") + "\n", { mode: 0o600 });
    const info = os.userInfo();
    const logFile = `${dir}/dropbear.log`;
    for (let attempt = 0;; attempt++) {
      const port = freePort();
      const args = ["-F", "-E", "-s", "-p", `127.0.0.1:${port}`, "-r", hostKeyFile, "-P", `${dir}/dropbear.pid`];
      const prefix = mountNamespacePrefix();
      const child = new Child(prefix[0], [
        ...prefix.slice(1),
        "sh",
        "-c",
        `mount --bind ${shellQuote(home)} ${shellQuote(info.homedir)} && exec ${DROPBEAR} ${
          args.map((w) => shellQuote(w)).join(" ")
        }`,
      ], { stderrFile: logFile });
      if (!await listening(child, port, logFile, "dropbear", attempt)) continue;
      const hostKeys = [{ type: "ssh-ed25519", publicLine }];
      return serverHandle({ port, user: info.username, dir, userKey, hostKeys, logFile, child });
    }
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}
