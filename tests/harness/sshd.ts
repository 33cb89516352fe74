/**
 * Starts a real OpenSSH `sshd` on 127.0.0.1 with throwaway host keys, user keys and its own sshd_config,
 * for tests that assert what a user of `remote` sees against the server they will really meet.
 *
 * @example Start one and stop it
 * ```ts
 * import { startSshd } from "./sshd.ts";
 * await using sshd = await startSshd();
 * console.log(sshd.port, sshd.knownHostsLine());
 * ```
 *
 * @module
 */
import * as os from "node:os";
import { Child, freePort, isRoot, mountNamespacePrefix, requireProgram, run, waitForPort } from "./process.ts";
import { shellQuote } from "../../plugins/mod.ts";

/** Where sshd lives; sshd refuses to start unless run by its absolute path. */
export const SSHD = "/usr/sbin/sshd";

/** A host key of a started server. */
export interface HostKey {
  /** `ssh-ed25519`, `ssh-rsa` */
  type: string;
  /** the `.pub` line: `type base64 comment` */
  publicLine: string;
}

/** A running sshd; `await using` stops it and removes its temp dir. */
export interface SshdServer extends AsyncDisposable {
  host: "127.0.0.1";
  port: number;
  /** the local user, whom the server logs in */
  user: string;
  /** the temp dir holding keys, config and log */
  dir: string;
  /** an unencrypted ed25519 private key listed in authorized_keys */
  userKey: string;
  hostKeys: HostKey[];
  /** known_hosts lines for every host key, as `[127.0.0.1]:port type key` */
  knownHostsLine(): string;
  /** sshd's debug log so far */
  log(): Promise<string>;
}

/**
 * Waits until a just-started server listens on `port`. False when another process took the port first
 * (start again on a new one, at most 4 times); throws with the server's log when it failed otherwise.
 */
export async function listening(
  child: Child,
  port: number,
  logFile: string,
  name: string,
  attempt: number,
): Promise<boolean> {
  const up = await waitForPort(port, () => child.alive).catch(async (err) => {
    await child[Symbol.asyncDispose]();
    throw err;
  });
  if (up) return true;
  await child[Symbol.asyncDispose]();
  const log = await Deno.readTextFile(logFile).catch(() => "");
  if (attempt < 4 && /Address already in use|Bind to port/.test(log)) return false;
  throw new Error(`${name} did not start:\n${log}`);
}

/** The handle of a started server; disposing it stops the process and removes its folder. */
export function serverHandle(server: {
  port: number;
  user: string;
  dir: string;
  userKey: string;
  hostKeys: HostKey[];
  logFile: string;
  child: Child;
}): SshdServer {
  const { port, dir, logFile, child, hostKeys } = server;
  let stopped = false;
  return {
    host: "127.0.0.1",
    port,
    user: server.user,
    dir,
    userKey: server.userKey,
    hostKeys,
    knownHostsLine: () =>
      hostKeys.map((k) => `[127.0.0.1]:${port} ${k.publicLine.split(" ").slice(0, 2).join(" ")}`).join("\n"),
    log: () => Deno.readTextFile(logFile).catch(() => ""),
    async [Symbol.asyncDispose]() {
      if (stopped) return;
      stopped = true;
      await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Options of {@linkcode startSshd}. */
export interface SshdOptions {
  /** extra sshd_config lines; they come first, so they win (sshd keeps the first value it reads) */
  config?: string;
  /** extra authorized_keys lines besides the one for `userKey` */
  authorizedKeys?: string[];
  /**
   * enables PAM password and keyboard-interactive login for the current user with this password, by
   * bind-mounting a throwaway /etc/pam.d/sshd (pam_exec checking a SHA-256 of the password) in a private
   * mount namespace; the host's own PAM files are never touched
   */
  password?: string;
  /** the sftp subsystem's command; default `internal-sftp` (e.g. `internal-sftp -R` for a read-only server) */
  sftpServer?: string;
  /**
   * mounts a tmpfs of `size` (`1m`) at `path` (an existing folder) for the server only, in a private mount
   * namespace, so a test can fill a disk; the host's mounts are never touched
   */
  tmpfs?: { path: string; size: string };
}

/** Starts sshd; throws (never skips) when it is missing. */
export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  await requireProgram(SSHD, "openssh-server");
  await requireProgram("/usr/bin/ssh-keygen", "openssh-client");
  if (isRoot()) {
    // sshd as root insists on its privilege separation directory
    await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  }
  const dir = await Deno.makeTempDir({ prefix: "remote-sshd-" });
  try {
    const hostKeys: HostKey[] = [];
    for (const type of ["ed25519", "rsa"]) {
      const file = `${dir}/host_${type}`;
      await run("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-f", file]);
      const publicLine = (await Deno.readTextFile(`${file}.pub`)).trim();
      hostKeys.push({ type: publicLine.split(" ")[0], publicLine });
    }
    const userKey = `${dir}/id_ed25519`;
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "remote-test", "-f", userKey]);
    const authorized = [(await Deno.readTextFile(`${userKey}.pub`)).trim(), ...(options.authorizedKeys ?? [])];
    await Deno.writeTextFile(`${dir}/authorized_keys`, authorized.join("\n") + "\n");
    const pam = options.password !== undefined ? await writePam(dir, options.password) : undefined;

    const user = os.userInfo().username;
    for (let attempt = 0;; attempt++) {
      const port = freePort();
      const config = [
        options.config ?? "",
        ...(pam
          ? ["UsePAM yes", "PasswordAuthentication yes", "KbdInteractiveAuthentication yes"]
          : ["UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no"]),
        "ListenAddress 127.0.0.1",
        `Port ${port}`,
        `HostKey ${dir}/host_ed25519`,
        `HostKey ${dir}/host_rsa`,
        `PidFile ${dir}/sshd.pid`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PermitRootLogin yes",
        "LogLevel DEBUG",
        "AcceptEnv REMOTE_TEST_*",
        `Subsystem sftp ${options.sftpServer ?? "internal-sftp"}`,
        "PrintMotd no",
        "",
      ].join("\n");
      await Deno.writeTextFile(`${dir}/sshd_config`, config);
      const logFile = `${dir}/sshd.log`;
      const sshdArgs = ["-D", "-E", logFile, "-f", `${dir}/sshd_config`];
      const mounts = [
        ...(pam ? [`mount --bind ${shellQuote(pam)} /etc/pam.d/sshd`] : []),
        ...(options.tmpfs
          ? [`mount -t tmpfs -o size=${shellQuote(options.tmpfs.size)} tmpfs ${shellQuote(options.tmpfs.path)}`]
          : []),
      ];
      const child = mounts.length > 0
        ? new Child(mountNamespacePrefix()[0], [
          ...mountNamespacePrefix().slice(1),
          "sh",
          "-c",
          `${mounts.join(" && ")} && exec ${SSHD} ${sshdArgs.map((w) => shellQuote(w)).join(" ")}`,
        ], { stderrFile: logFile })
        : new Child(SSHD, sshdArgs, { stderrFile: logFile });
      if (!await listening(child, port, logFile, "sshd", attempt)) continue;
      return serverHandle({ port, user, dir, userKey, hostKeys, logFile, child });
    }
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}

async function writePam(dir: string, password: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(password)));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const check = `${dir}/check_password`;
  // pam_exec hands the typed password on stdin, NUL-terminated; only its digest is kept on disk
  await Deno.writeTextFile(
    check,
    `#!/bin/bash\nIFS= read -r -d '' pw\n[ "$(printf %s "$pw" | sha256sum | cut -d' ' -f1)" = "${hex}" ]\n`,
    { mode: 0o755 },
  );
  const pam = `${dir}/pam_sshd`;
  await Deno.writeTextFile(
    pam,
    [
      `auth required pam_exec.so expose_authtok quiet ${check}`,
      // pam_exec has no credentials to set; without a module that does, keyboard-interactive fails in setcred
      "auth required pam_permit.so",
      "account required pam_permit.so",
      "session required pam_permit.so",
      "password required pam_deny.so",
      "",
    ].join("\n"),
  );
  return pam;
}

/**
 * Runs `fn` with a server and prints the server's log when `fn` throws, so a failing test shows why.
 *
 * @example
 * ```ts
 * import { startSshd, withLogOnFailure } from "./sshd.ts";
 * await using sshd = await startSshd();
 * await withLogOnFailure(sshd, async () => {});
 * ```
 */
export async function withLogOnFailure<T>(server: { log(): Promise<string> }, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    console.error(`--- server log ---\n${await server.log()}\n--- end of server log ---`);
    throw err;
  }
}
