/**
 * The winrm transport over WS-Management, with Basic over HTTPS or NTLMv2 with message sealing over HTTP:
 * PowerShell remoting (the `psrp` capability: a `subsystem` request opens a PowerShell configuration's shell
 * and carries PSRP, see psrp.ts), or a WinRS command shell (cmd, or powershell.exe inside it) for `exec` and
 * `shell` requests.
 *
 * One WinRS command runs in one shell: Create, Command, Receive until Done, Delete. The shell is deleted
 * on every exit path (end, error, Ctrl-C, dispose). Interactive shells get local line editing,
 * since WinRS has no terminal protocol (see line_editor.ts and docs/winrm.md).
 *
 * @example Running a command
 * ```ts ignore
 * import { open } from "./mod.ts";
 * await using ch = await open(ctx, { kind: "exec", command: "ipconfig" });
 * await ch.stdout.pipeTo(Deno.stdout.writable);
 * console.log(await ch.exit);
 * ```
 *
 * @module
 */
import {
  type Channel,
  type ExitStatus,
  type OpenContext,
  type OpenRequest,
  RemoteError,
  type SessionHost,
  TransportError,
  UsageError,
} from "../../plugins/mod.ts";
import { RECEIVE_TIMED_OUT, WinrmClient, type WinrmSettings } from "./client.ts";
import { DEFAULT_BASIC_CHARSET } from "./basic_charset.ts";
import { EchoFilter, LineEditor } from "../../plugins/mod.ts";
import { utf16le } from "./ntlm.ts";
import { Action, PS_RESOURCE_PREFIX, SignalCode, toBase64 } from "./wsman_xml.ts";
import { parameters } from "./manifest.ts";
import { openPsrpChannel, type PsrpChannelOptions, psrpResourceUri } from "./psrp.ts";
import type { RetryOptions } from "./_retry.ts";
import {
  connectPool,
  disconnectShell,
  enumerateShells,
  findShell,
  hostSessions,
  receiveShellOutput,
} from "./psrp_sessions.ts";
import { connectOutOfProc, RunspacePool } from "../../plugins/psrp/mod.ts";
export { manifest } from "./manifest.ts";

/** The environment variable that supplies the password for automation (see docs/winrm.md for the risk). */
export const PASSWORD_ENV = "REMOTE_WINRM_PASSWORD";

/** STATUS_CONTROL_C_EXIT: how a Windows process ended by Ctrl-C exits */
const CONTROL_C_EXIT = 0xc000013a;
const DEFAULT_OPERATION_TIMEOUT_MS = 20_000;

/** Connection settings from the target and the bound parameters, without the password. */
export type ResolvedSettings = Omit<WinrmSettings, "password">;

/** Works out the endpoint, authentication and TLS checks; throws usage errors for unsafe or unsupported choices. */
export function resolveSettings(ctx: OpenContext): ResolvedSettings {
  const t = ctx.target;
  const params = parameters.read(ctx.parameters);
  let url: URL;
  if (params.connectionUri !== undefined) {
    url = new URL(params.connectionUri.href); // a copy: the path is filled in below
  } else {
    const typed = /^(https?):\/\//i.exec(t.display ?? "")?.[1]?.toLowerCase();
    const port = t.port ?? params.port;
    const ssl = params.useSSL === true || typed === "https" || (typed === undefined && port === 5986);
    // the core has parsed ComputerName (or the typed target) into target.host and target.port
    const host = t.host || params.computerName;
    if (!host) throw new UsageError("no computer name given", { hint: "remote enter --computer-name <host>" });
    const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
    url = new URL(`${ssl ? "https" : "http"}://${h}:${port ?? (ssl ? 5986 : 5985)}${t.path || "/wsman"}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`winrm needs an http or https URL, not ${url.protocol}`, {
      hint: "e.g. https://win01:5986/wsman",
    });
  }
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/wsman";
  const mech = (params.authentication ?? "Default").toLowerCase();
  if (mech === "kerberos" || mech === "credssp") {
    throw new RemoteError(
      "unsupported",
      `winrm ${mech === "kerberos" ? "Kerberos" : "CredSSP"} authentication is not supported yet`,
      {
        hint: "use --authentication Negotiate (NTLM), or Basic over https",
      },
    );
  }
  const auth = mech === "basic" ? "basic" : "negotiate";
  if (auth === "basic" && url.protocol === "http:" && params.allowUnencrypted !== true) {
    throw new UsageError("basic authentication over http would send the password and all traffic in clear", {
      hint: "use https (--use-ssl), or --authentication Negotiate, or pass --allow-unencrypted if you accept the risk",
    });
  }
  const username = params.credential?.user ?? t.user;
  if (!username) {
    throw new UsageError("winrm needs a user name", { hint: "pass --credential DOMAIN\\user (or user@domain)" });
  }
  const op = params.operationTimeout ?? DEFAULT_OPERATION_TIMEOUT_MS;
  return {
    url,
    auth,
    basicCharset: params.basicCharset ?? DEFAULT_BASIC_CHARSET,
    username,
    tls: {
      verifyCa: params.skipCACheck !== true,
      verifyHost: params.skipCNCheck !== true,
    },
    allowRedirection: params.allowRedirection === true,
    operationTimeoutMs: Math.max(1000, Math.min(op, 3_600_000)),
    connectTimeoutMs: 15_000,
  };
}

/** The password: from {@linkcode PASSWORD_ENV} if set, else asked without echo. */
export async function getPassword(ctx: OpenContext, username: string, host: string): Promise<string> {
  const given = parameters.read(ctx.parameters).credential?.password;
  if (given !== undefined) return given;
  const env = Deno.env.get(PASSWORD_ENV);
  if (env !== undefined) return env;
  if (!ctx.prompt.interactive) {
    throw new UsageError(`no password for ${username}@${host}, and no terminal to ask on`, {
      hint: `run remote in a terminal, or set ${PASSWORD_ENV} (see remote help winrm for its risk)`,
    });
  }
  return await ctx.prompt.ask(`Password for ${username}@${host}: `, { secret: true, what: "--credential password" });
}

/** The command line that runs `command` under the configured shell. */
export function commandLineFor(configuration: string | undefined, command: string | undefined): string {
  const c = (configuration ?? "cmd").toLowerCase();
  if (c === "cmd") return command ?? "cmd";
  if (c === "powershell" || c === "microsoft.powershell" || c === "powershell.exe" || c === "pwsh") {
    const exe = c === "pwsh" ? "pwsh.exe" : "powershell.exe";
    if (command === undefined) return `${exe} -NoLogo -NoExit -Command -`;
    return `${exe} -NoLogo -NoProfile -NonInteractive -EncodedCommand ${toBase64(utf16le(command))}`;
  }
  throw new RemoteError(
    "unsupported",
    `configuration ${configuration} is a PowerShell endpoint: it runs PowerShell scripts through PSRP, not commands`,
    {
      hint: "run it with remote invoke or remote enter (they speak PSRP), or pass --configuration-name cmd",
    },
  );
}

/**
 * Opens a PowerShell session (`subsystem` request: the name is the configuration, see
 * {@linkcode psrpResourceUri}) or a WinRS shell running `request`.
 */
export async function open(ctx: OpenContext, request: OpenRequest): Promise<Channel> {
  if (request.kind === "subsystem") {
    const client = await clientFor(ctx);
    ctx.signal.throwIfAborted();
    return openPsrpChannel(client, psrpResourceUri(request.name), ctx.signal, robustness(ctx));
  }
  const resolved = resolveSettings(ctx);
  const commandLine = commandLineFor(
    parameters.read(ctx.parameters).configurationName,
    request.kind === "exec" ? request.command : undefined,
  );
  const password = await getPassword(ctx, resolved.username, resolved.url.hostname);
  const client = new WinrmClient({ ...resolved, password });
  if (resolved.auth === "basic") client.basicCredentials(); // a charset that cannot carry them fails before connecting
  return await openWith(client, ctx.signal, request, commandLine);
}

/** A client for the context's endpoint, with its password. */
async function clientFor(ctx: OpenContext): Promise<WinrmClient> {
  const resolved = resolveSettings(ctx);
  const password = await getPassword(ctx, resolved.username, resolved.url.hostname);
  const client = new WinrmClient({ ...resolved, password });
  if (resolved.auth === "basic") client.basicCredentials();
  return client;
}

/** How a PowerShell session rides out a broken connection: `--max-retry-connection-time`, notices to the user. */
function robustness(ctx: OpenContext): PsrpChannelOptions {
  return {
    maxRetryConnectionMs: parameters.read(ctx.parameters).maxRetryConnectionTime,
    notice: (line) => ctx.notice(line),
  };
}

/** The same for `remote receive` and `remote disconnect`, with Ctrl-C (the context's signal) ending the wait. */
function retrying(ctx: OpenContext): RetryOptions {
  return {
    windowMs: parameters.read(ctx.parameters).maxRetryConnectionTime,
    notice: (line) => ctx.notice(line),
    signal: ctx.signal,
  };
}

/** The configuration a session of this context opens (`--configuration-name`, else Microsoft.PowerShell). */
function configurationOf(ctx: OpenContext): string {
  const given = parameters.read(ctx.parameters).configurationName;
  if (given !== undefined && given.toLowerCase() === "cmd") {
    throw new UsageError("a WinRS cmd shell cannot be disconnected (MS-WSMV 3.1.4.15)", {
      hint: "persistent sessions on Windows are PowerShell sessions: drop --configuration-name cmd",
    });
  }
  return given ?? "Microsoft.PowerShell";
}

/**
 * PowerShell sessions kept on the host (New-PSSession, Disconnect-, Connect-, Receive-, Remove-, Get-PSSession):
 * a session is a PowerShell shell with a Name, left Disconnected on the host (MS-PSRP 3.1.5.3.14–16).
 */
export const sessions: SessionHost = {
  async list(ctx) {
    const client = await clientFor(ctx);
    try {
      return hostSessions(await enumerateShells(client));
    } finally {
      client.close();
    }
  },

  /** Create with the session's Name, the pool opened, `command` started (with Out-String -Stream), Disconnect */
  async create(ctx, name, options) {
    const configuration = configurationOf(ctx);
    const client = await clientFor(ctx);
    const resourceUri = psrpResourceUri(configuration);
    const channel = openPsrpChannel(client, resourceUri, ctx.signal, {
      ...robustness(ctx),
      name,
      receivePipelines: false,
    });
    const conn = connectOutOfProc({ readable: channel.stdout, writable: channel.stdin });
    const pool = new RunspacePool({ wire: conn.wire });
    conn.wire.attach(pool);
    try {
      await pool.open(ctx.signal);
      if (options.command !== undefined) {
        const pipeline = pool.createPipeline({
          commands: [{ cmd: options.command, isScript: true }, {
            cmd: "Out-String",
            args: [{ name: "Stream", value: true }, { name: "Width", value: 120 }],
          }],
        });
        pipeline.done.catch(() => {}); // it runs on the host; its output is received later
        await conn.wire.drained(pipeline.pid, 0); // rsp:Command has been answered
      }
      await disconnectShell(client, resourceUri, channel.shellId!);
      await channel.abandon();
    } catch (e) {
      await channel[Symbol.asyncDispose]();
      throw e;
    }
    return {
      name,
      state: "Disconnected",
      availability: "None",
      instanceId: options.instanceId,
      createdAt: new Date().toISOString(),
      configurationName: resourceUri.slice(PS_RESOURCE_PREFIX.length),
    };
  },

  /** Connect as a new client; the channel speaks PSRP's framing (the core enters PowerShell over it) */
  async attach(ctx, name) {
    const client = await clientFor(ctx);
    try {
      const shell = await findShell(client, name);
      return openPsrpChannel(client, shell.resourceUri, ctx.signal, {
        ...robustness(ctx),
        name,
        connect: { shellId: shell.shellId },
      });
    } catch (e) {
      client.close();
      throw e;
    }
  },

  async disconnect(ctx, name, options) {
    const client = await clientFor(ctx);
    try {
      const shell = await findShell(client, name);
      // a disconnected shell takes new options only from a client: connect, then disconnect with them
      if (shell.state === "Disconnected") {
        await connectPool(client, shell.resourceUri, shell.shellId, retrying(ctx));
      }
      await disconnectShell(client, shell.resourceUri, shell.shellId, {
        idleTimeoutMs: options.idleTimeoutMs,
        bufferMode: options.outputBufferingMode === "drop"
          ? "Drop"
          : options.outputBufferingMode === "block"
          ? "Block"
          : undefined,
      });
    } finally {
      client.close();
    }
  },

  async receive(ctx, name, options) {
    const client = await clientFor(ctx);
    // a Receive that brings nothing within a few seconds means the host has no more output kept
    const quick = new WinrmClient({ ...client.settings, operationTimeoutMs: 3_000 });
    client.close();
    try {
      const shell = await findShell(quick, name);
      const output = await receiveShellOutput(quick, shell.resourceUri, shell.shellId, options, retrying(ctx));
      return new TextEncoder().encode(output);
    } finally {
      quick.close();
    }
  },

  async remove(ctx, name) {
    const client = await clientFor(ctx);
    try {
      const shell = await findShell(client, name);
      await client.request(Action.delete, "", {
        resourceUri: shell.resourceUri,
        selectors: { ShellId: shell.shellId },
      }, () => undefined);
    } finally {
      client.close();
    }
  },
};

/** Opens the channel on an existing client (the part of {@linkcode open} tests and benchmarks drive). */
export async function openWith(
  client: WinrmClient,
  signal: AbortSignal,
  request: Exclude<OpenRequest, { kind: "subsystem" }>,
  commandLine: string,
): Promise<Channel> {
  let shellId: string | undefined;
  let commandId: string;
  try {
    signal.throwIfAborted();
    shellId = await client.createShell({ env: request.env });
    signal.throwIfAborted();
    commandId = await client.command(shellId, commandLine);
  } catch (e) {
    if (shellId) await client.deleteShell(shellId).catch(() => {});
    client.close();
    if (signal.aborted && !(e instanceof RemoteError)) {
      throw new TransportError("connecting was cancelled", { layer: "timeout", code: "interrupted", cause: e });
    }
    throw e;
  }
  return new WinrsChannel(client, shellId, commandId, request, signal);
}

/** A running WinRS command as a {@linkcode Channel}. */
class WinrsChannel implements Channel {
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly exit: Promise<ExitStatus>;
  #out!: ReadableStreamDefaultController<Uint8Array>;
  #err!: ReadableStreamDefaultController<Uint8Array>;
  #client: WinrmClient;
  #shellId: string;
  #commandId: string;
  #sentCtrlC = false;
  #finished = false;
  #deleted?: Promise<void>;
  #stdinEnded = false;
  /** stdin not yet sent: written chunks gather here and leave in Sends as large as the envelope allows */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #endSent = false;
  #draining = false;
  #drained: Promise<void> = Promise.resolve();
  #sendError?: Error;
  #writers: (() => void)[] = [];
  #lineMode: boolean;
  #echo = new EchoFilter();
  #stop = new AbortController();
  #failure?: Error;

  constructor(
    client: WinrmClient,
    shellId: string,
    commandId: string,
    request: Exclude<OpenRequest, { kind: "subsystem" }>,
    signal: AbortSignal,
  ) {
    this.#client = client;
    this.#shellId = shellId;
    this.#commandId = commandId;
    this.#lineMode = request.kind === "shell" && request.pty !== undefined;
    this.stdout = new ReadableStream({ start: (c) => void (this.#out = c) });
    this.stderr = new ReadableStream({ start: (c) => void (this.#err = c) });
    if (this.#lineMode) this.#err.close(); // a terminal session shows both streams as one
    const editor = new LineEditor();
    this.stdin = new WritableStream<Uint8Array>({
      write: (chunk) => {
        if (!this.#lineMode) return this.#queueSend(chunk, false);
        for (const ev of editor.feed(chunk)) {
          if (ev.kind === "echo") this.#emit("stdout", ev.bytes);
          else if (ev.kind === "line") {
            this.#echo.expect(ev.text);
            this.#background(this.#queueSend(new TextEncoder().encode(`${ev.text}\r\n`), false));
          } else if (ev.kind === "interrupt") this.#background(this.signal("INT"));
          else if (ev.kind === "eof") this.#background(this.#queueSend(new Uint8Array(), true));
        }
      },
      close: () => this.#queueSend(new Uint8Array(), true),
      abort: () => this.#queueSend(new Uint8Array(), true),
    });
    const onAbort = () => void this[Symbol.asyncDispose]();
    signal.addEventListener("abort", onAbort, { once: true });
    this.exit = this.#receiveLoop().finally(() => signal.removeEventListener("abort", onAbort));
  }

  /** a failed Send or Signal typed at the terminal ends the session with that error */
  #background(p: Promise<void>): void {
    p.catch((e) => {
      this.#failure ??= e instanceof Error ? e : new Error(String(e));
      void this[Symbol.asyncDispose]();
    });
  }

  #emit(stream: "stdout" | "stderr", data: Uint8Array): void {
    if (this.#finished || data.length === 0) return;
    try {
      (stream === "stderr" && !this.#lineMode ? this.#err : this.#out).enqueue(data);
    } catch { /* the reader cancelled */ }
  }

  /**
   * Queues stdin. A write returns at once while less than one Send's worth waits, so the chunks a
   * pipe delivers (64 KiB) gather into envelopes of the host's MaxEnvelopeSize; past that it waits
   * for the Send in flight. `end` resolves once everything, End included, has been sent.
   */
  #queueSend(data: Uint8Array, end: boolean): Promise<void> {
    if (this.#sendError) return Promise.reject(this.#sendError);
    if (this.#stdinEnded || this.#finished) return Promise.resolve();
    if (end) this.#stdinEnded = true;
    if (data.length) {
      this.#pending.push(data);
      this.#pendingBytes += data.length;
    }
    if (!this.#draining) this.#drained = this.#drain();
    const failed = () => {
      if (this.#sendError) throw this.#sendError;
    };
    if (end) return this.#drained.then(failed);
    return new Promise<void>((resolve) => {
      const check = () => {
        if (this.#pendingBytes < this.#client.sendRoom(this.#shellId, this.#commandId) || !this.#draining) resolve();
        else this.#writers.push(check);
      };
      check();
    }).then(failed);
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      // the first stdin waits for the host's envelope size, read once; End alone needs none
      if (this.#pendingBytes) await this.#client.readMaxEnvelopeSize();
      while (!this.#finished && (this.#pendingBytes > 0 || (this.#stdinEnded && !this.#endSent))) {
        const chunk = this.#take(this.#client.sendRoom(this.#shellId, this.#commandId));
        const end = this.#stdinEnded && this.#pendingBytes === 0;
        this.#wakeWriters();
        await this.#client.send(this.#shellId, this.#commandId, chunk, end);
        if (end) this.#endSent = true;
      }
    } catch (e) {
      if (!this.#finished) {
        // stdin the command will never get ends the session with the reason, not with a wait for it
        this.#sendError = e instanceof Error ? e : new Error(String(e));
        this.#background(Promise.reject(this.#sendError));
      }
    } finally {
      this.#draining = false;
      this.#wakeWriters();
    }
  }

  /** up to `n` bytes from the front of the pending stdin, as one array */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.#pendingBytes));
    let o = 0;
    while (o < out.length) {
      const head = this.#pending[0];
      const k = Math.min(head.length, out.length - o);
      out.set(head.subarray(0, k), o);
      o += k;
      if (k === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(k);
    }
    this.#pendingBytes -= out.length;
    return out;
  }

  #wakeWriters(): void {
    for (const w of this.#writers.splice(0)) w();
  }

  async #receiveLoop(): Promise<ExitStatus> {
    let status: ExitStatus;
    try {
      for (;;) {
        if (this.#stop.signal.aborted) {
          status = {
            kind: "lost",
            error: this.#failure ?? new TransportError("the session was closed", { layer: "channel" }),
          };
          break;
        }
        const r = await this.#client.receive(this.#shellId, this.#commandId);
        if (r === RECEIVE_TIMED_OUT) continue; // w:TimedOut is the normal end of a long poll
        for (const c of r.chunks) {
          this.#emit(c.name, c.name === "stdout" && this.#lineMode ? this.#echo.filter(c.data) : c.data);
        }
        if (r.done) {
          status = this.#status(r.exitCode ?? 0);
          break;
        }
      }
    } catch (e) {
      status = { kind: "lost", error: this.#failure ?? (e instanceof Error ? e : new Error(String(e))) };
    }
    if (this.#failure && status.kind !== "lost") status = { kind: "lost", error: this.#failure };
    if (this.#lineMode) this.#emit("stdout", this.#echo.flush());
    await this.#cleanup();
    for (const c of [this.#out, this.#err]) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    return status;
  }

  #status(code: number): ExitStatus {
    const u = code >>> 0;
    if (this.#sentCtrlC && u === CONTROL_C_EXIT) return { kind: "signaled", signal: "INT", code: 130 };
    return { kind: "exited", code };
  }

  /** deletes the shell once, whatever happened; the command's end needs no Signal terminate first */
  #cleanup(): Promise<void> {
    this.#deleted ??= (async () => {
      this.#finished = true;
      try {
        await this.#client.deleteShell(this.#shellId);
      } catch { /* the shell may be gone already; nothing more can be done */ }
      this.#client.close();
    })();
    return this.#deleted;
  }

  /** INT sends ctrl_c; TERM, KILL and HUP send terminate; BREAK sends ctrl_break */
  async signal(name: string): Promise<void> {
    if (this.#finished) return;
    const n = name.toUpperCase().replace(/^SIG/, "");
    const code = n === "INT"
      ? SignalCode.ctrlC
      : n === "BREAK"
      ? SignalCode.ctrlBreak
      : n === "TERM" || n === "KILL" || n === "HUP"
      ? SignalCode.terminate
      : undefined;
    if (!code) {
      throw new RemoteError("unsupported", `winrm cannot send signal ${name}`, { hint: "use INT, TERM or KILL" });
    }
    if (code === SignalCode.ctrlC) this.#sentCtrlC = true;
    try {
      await this.#client.signal(this.#shellId, this.#commandId, code);
    } catch (e) {
      if (!this.#finished) throw e;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#stop.abort();
    await this.#cleanup();
    await this.exit.catch(() => {});
  }
}
