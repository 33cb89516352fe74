/**
 * The PowerShell part of the WinRM test server (tests/winrm_server.ts): a WS-Man shell on a PowerShell
 * configuration's resource URI (`http://schemas.microsoft.com/powershell/<name>`) that carries PSRP, as
 * Windows' WinRM plug-in for PowerShell does. It follows:
 *
 * - [MS-PSRP] 3.1.5.3.1 (Create with creationXml holding SESSION_CAPABILITY and INIT_RUNSPACEPOOL, option
 *   protocolversion MustComply), 3.1.5.3.3 (Command: an empty rsp:Command, the first CREATE_PIPELINE
 *   fragments in rsp:Arguments, CommandId chosen by the client = the pipeline id), 3.1.5.3.5 (Send on the
 *   stdin and pr streams), 3.1.5.3.7 (Receive on stdout, with and without a CommandId), 3.1.5.3.9 (Signal
 *   `http://schemas.microsoft.com/powershell/signal/crtl_c`, spelt so; any other code ends the command, as
 *   PowerShell's WSManPlugin.cs compares it ordinally), 3.2 (the server role: plugins/psrp/server.ts).
 * - [MS-WSMV] 3.1.4.1, 3.1.4.2, 3.1.4.11–14 for the shell operations, with the reply shapes of pypsrp's
 *   recordings against Windows PowerShell 5.1 (tests/tests_pypsrp/responses/test_psrp_open_runspace.yml,
 *   test_psrp_multiple_invocations.yml, test_psrp_nested_command.yml, test_psrp_with_input.yml): one
 *   rsp:Stream per fragment, CommandState Done with ExitCode 0 in the Receive that carries the last
 *   PIPELINE_STATE, an empty SignalResponse and DeleteResponse.
 *
 * The pipeline is a small evaluator, not PowerShell. Statements are split on `;` and newlines:
 *
 * | statement | does |
 * |---|---|
 * | `'text'`, `"text"`, `Write-Output text`, `echo text` | outputs the string |
 * | `N`, `N+M` | outputs the number (an Int32) |
 * | `Write-Error text` | an ErrorRecord (WriteErrorException); `$?` becomes false |
 * | `Write-Warning text` | a WarningRecord |
 * | `throw 'text'` | the pipeline fails with a RuntimeException |
 * | `exit N` | SetShouldExit(N) to the host, the pipeline ends |
 * | `Start-Sleep N`, `Start-Sleep -Milliseconds N` | waits (Ctrl-C stops it) |
 * | `1..N \| % { "text $_"; Start-Sleep -Milliseconds M }` | N lines, M ms apart |
 * | `$args -join 'sep'` | the script's arguments joined |
 * | `$input \| % { $_.ToUpper() }` | the input, upper-cased |
 * | `$env:COMPUTERNAME`, `whoami`, `$PSSenderInfo.ConfigurationName` | `WIN01`, `win01\alice`, the configuration |
 * | `prompt` | `PS C:\Users\<user>\Documents> ` |
 * | `$global:?` | whether the last statement of the previous pipeline succeeded |
 * | `$s = $global:?`, then `"text$s"` | the same as `True`/`False` after the text |
 * | anything else | PowerShell's "is not recognized" ErrorRecord (CommandNotFoundException) |
 *
 * A second command `Out-String` passes the strings through, as `Out-String -Stream` does for strings.
 *
 * @module
 */
import {
  decodeFragments,
  decodeMessage,
  Defragmenter,
  encodeMessage,
  errorRecordObject,
  Fragmenter,
  type Message,
  type PSObject,
  type PSValue,
  RunspacePoolServer,
  type ServerPipeline,
  type ServerPipelineOutcome,
} from "../plugins/psrp/mod.ts";

/** The resource URI prefix of PowerShell configurations. */
export const PS_RESOURCE_PREFIX = "http://schemas.microsoft.com/powershell/";
/** The stop signal, spelt as the protocol spells it (MS-PSRP 3.1.5.3.9). */
export const PS_CTRL_C = "http://schemas.microsoft.com/powershell/signal/crtl_c";

const DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";

interface Command {
  id: string;
  out: Uint8Array[];
  done: boolean;
}

/** What the shell needs from the server around it. */
export interface PsShellContext {
  /** the fault for a Receive that had nothing within the OperationTimeout */
  timedOut(): Error;
  /** the fault for an unknown CommandId */
  unknownCommand(): Error;
  /** the server is closing or the shell went */
  gone(): boolean;
}

/** One PowerShell shell: a runspace pool behind WS-Man. */
export class PsShell {
  readonly server: RunspacePoolServer;
  readonly pool: Uint8Array[] = [];
  readonly commands = new Map<string, Command>();
  readonly #frag = new Fragmenter(32 * 1024);
  readonly #defrag = new Defragmenter();
  readonly #wake = new Set<() => void>();
  /** the last statement's success, read by `$global:?` */
  #lastOk = true;
  /** MS-WSMV 3.1.4.15: Connected, or Disconnected with no client until Reconnect/Connect or the idle timeout */
  state: "Connected" | "Disconnected" = "Connected";
  bufferMode: "Block" | "Drop" = "Block";
  idleTimeoutMs = 7_200_000;
  readonly createdAt = Date.now();
  /** the shell's Name from Create (New-PSSession -Name) */
  name?: string;
  #idle?: ReturnType<typeof setTimeout>;
  #disconnects = 0;

  constructor(
    readonly id: string,
    readonly owner: string,
    readonly resourceUri: string,
    readonly protocolVersion: string,
    /** fragments a command may hold for a disconnected client before Block suspends it or Drop discards */
    readonly bufferFragments = 1000,
  ) {
    this.server = new RunspacePoolServer({
      send: (m) => this.#send(m),
      run: (p) => this.#run(p),
    });
  }

  get configurationName(): string {
    return this.resourceUri.slice(PS_RESOURCE_PREFIX.length);
  }

  /** Fragments from the client (creationXml, Arguments, Send): each finished message goes to the pool. */
  feed(bytes: Uint8Array): void {
    for (const f of decodeFragments(bytes)) {
      const whole = this.#defrag.push(f);
      if (whole) this.server.receive(decodeMessage(whole));
    }
  }

  /** rsp:Command: the pipeline's first fragments in Arguments, its id the CommandId. */
  command(commandId: string, args: Uint8Array): string {
    const id = commandId.toUpperCase();
    this.commands.set(id, { id, out: [], done: false });
    this.feed(args);
    return `<rsp:CommandResponse><rsp:CommandId>${id}</rsp:CommandId></rsp:CommandResponse>`;
  }

  /** rsp:Signal: crtl_c stops the pipeline; any other code ends the command. */
  signal(commandId: string, code: string, ctx: PsShellContext): string {
    const c = this.commands.get(commandId.toUpperCase());
    if (!c) throw ctx.unknownCommand();
    this.server.stopPipeline(commandId);
    if (code !== PS_CTRL_C) this.commands.delete(c.id);
    return `<rsp:SignalResponse/>`;
  }

  /** rsp:Receive with or without a CommandId: the fragments waiting, one rsp:Stream each. */
  async receive(commandId: string | undefined, timeoutMs: number, maxEnvelope: number, ctx: PsShellContext) {
    const c = commandId === undefined ? undefined : this.commands.get(commandId.toUpperCase());
    if (commandId !== undefined && !c) throw ctx.unknownCommand();
    const queue = c ? c.out : this.pool;
    const deadline = Date.now() + timeoutMs;
    // a disconnected shell holds its output for the client that connects (MS-PSRP 3.1.5.3.16); a Receive
    // pending when the shell was disconnected ends without any of it
    const generation = this.#disconnects;
    while ((!queue.length && !(c?.done)) || this.state === "Disconnected") {
      const left = deadline - Date.now();
      if (left <= 0 || ctx.gone() || generation !== this.#disconnects) throw ctx.timedOut();
      await new Promise<void>((r) => {
        const t = setTimeout(() => (this.#wake.delete(w), r()), Math.min(left, 200));
        const w = () => (clearTimeout(t), this.#wake.delete(w), r());
        this.#wake.add(w);
      });
    }
    // real hosts gather output for a moment before answering
    await new Promise((r) => setTimeout(r, 5));
    const attr = c ? ` CommandId="${c.id}"` : "";
    let room = maxEnvelope - 2048;
    let xml = `<rsp:ReceiveResponse>`;
    while (queue.length) {
      const cost = 100 + Math.ceil(queue[0].length / 3) * 4;
      if (cost > room) break;
      room -= cost;
      xml += `<rsp:Stream Name="stdout"${attr}>${b64(queue.shift()!)}</rsp:Stream>`;
    }
    for (const w of [...this.#wake]) w(); // room in a Block buffer
    if (c?.done && !c.out.length) {
      xml += `<rsp:CommandState CommandId="${c.id}" State="${DONE}"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>`;
    }
    return xml + `</rsp:ReceiveResponse>`;
  }

  /** rsp:Delete: the pool closes and every pipeline stops. */
  delete(): void {
    clearTimeout(this.#idle);
    this.server.close();
    for (const w of [...this.#wake]) w();
  }

  /**
   * rsp:Disconnect (MS-PSRP 3.1.5.3.16): no client until Reconnect or Connect; after `IdleTimeOut` without one,
   * `expire` ends the shell as the host does.
   */
  disconnect(idleTimeoutMs: number | undefined, bufferMode: string | undefined, expire: () => void): void {
    if (idleTimeoutMs !== undefined) this.idleTimeoutMs = idleTimeoutMs;
    if (bufferMode === "Block" || bufferMode === "Drop") this.bufferMode = bufferMode;
    this.state = "Disconnected";
    this.#disconnects++;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(expire, this.idleTimeoutMs);
    for (const w of [...this.#wake]) w();
  }

  /** rsp:Reconnect (MS-WSMV 3.1.4.16): the client is back. */
  reconnect(): void {
    this.state = "Connected";
    clearTimeout(this.#idle);
  }

  /** the shell as rsp:Shell in an EnumerateResponse (pypsrp's test_psrp_disconnect_runspaces.yml) */
  describe(machine: string): string {
    const seconds = Math.floor((Date.now() - this.createdAt) / 1000);
    const name = this.name === undefined ? "" : `<rsp:Name>${this.name}</rsp:Name>`;
    return `<rsp:Shell xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><rsp:ShellId>${this.id}</rsp:ShellId>${name}` +
      `<rsp:ResourceUri>${this.resourceUri}</rsp:ResourceUri><rsp:Owner>${machine}\\${this.owner}</rsp:Owner>` +
      `<rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:ProcessId>${Deno.pid}</rsp:ProcessId>` +
      `<rsp:IdleTimeOut>PT${(this.idleTimeoutMs / 1000).toFixed(3)}S</rsp:IdleTimeOut>` +
      `<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>` +
      `<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</rsp:Locale>` +
      `<rsp:DataLocale>en-US</rsp:DataLocale><rsp:CompressionMode>NoCompression</rsp:CompressionMode>` +
      `<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>` +
      `<rsp:BufferMode>${this.bufferMode}</rsp:BufferMode><rsp:State>${this.state}</rsp:State>` +
      `<rsp:ShellRunTime>P0DT0H0M${seconds}S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>` +
      `<rsp:MemoryUsed>46MB</rsp:MemoryUsed><rsp:ChildProcesses>0</rsp:ChildProcesses></rsp:Shell>`;
  }

  /**
   * rsp:Connect with connectXml (MS-PSRP 3.1.5.3.14): another client takes the disconnected pool; the reply's
   * connectResponseXml carries the server's SESSION_CAPABILITY and RUNSPACEPOOL_INIT_DATA, and the
   * APPLICATION_PRIVATE_DATA waits for its Receive (pypsrp's test_psrp_disconnected_commands.yml).
   */
  connect(connectXml: Uint8Array): string {
    this.state = "Connected";
    clearTimeout(this.#idle);
    this.feed(connectXml);
    const reply: Uint8Array[] = [];
    let whole = 0;
    while (this.pool.length && whole < 2) {
      const f = this.pool.shift()!;
      reply.push(f);
      if (f[16] & 2) whole++;
    }
    const bytes = new Uint8Array(reply.reduce((n, f) => n + f.length, 0));
    reply.reduce((o, f) => (bytes.set(f, o), o + f.length), 0);
    return `<rsp:ConnectResponse><rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>` +
      `<connectResponseXml xmlns="http://schemas.microsoft.com/powershell">${
        b64(bytes)
      }</connectResponseXml></rsp:ConnectResponse>`;
  }

  /** the shell's commands as rsp:Command items of an EnumerateResponse (test_psrp_disconnected_commands.yml) */
  describeCommands(): string {
    return [...this.commands.values()].map((c) =>
      `<rsp:Command xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><rsp:CommandId>${c.id}</rsp:CommandId>` +
      `<rsp:CommandLine></rsp:CommandLine><rsp:CommandState>${
        c.done ? "Done" : "Running"
      }</rsp:CommandState></rsp:Command>`
    ).join("");
  }

  /** rsp:Connect with a CommandId: the connected client takes a pipeline that ran while it was away */
  connectCommand(commandId: string, ctx: PsShellContext): string {
    if (!this.commands.has(commandId.toUpperCase())) throw ctx.unknownCommand();
    return `<rsp:ConnectResponse/>`;
  }

  /**
   * Resolves when pipeline `pid` may write more: at once unless the shell is disconnected with Block and the
   * command holds `bufferFragments` (the pipeline is suspended, as OutputBufferingMode Block does).
   */
  async room(pid: string): Promise<void> {
    const c = this.commands.get(pid.toUpperCase());
    while (c && this.state === "Disconnected" && this.bufferMode === "Block" && c.out.length >= this.bufferFragments) {
      await new Promise<void>((r) => {
        const t = setTimeout(() => (this.#wake.delete(w), r()), 200);
        const w = () => (clearTimeout(t), this.#wake.delete(w), r());
        this.#wake.add(w);
      });
    }
  }

  #send(m: Message): void {
    const cmd = this.commands.get(m.pid.toUpperCase());
    const queue = m.pid === "00000000-0000-0000-0000-000000000000" ? this.pool : cmd?.out;
    if (!queue) return;
    // Drop: a disconnected shell keeps the newest output, the oldest whole messages go
    if (cmd && this.state === "Disconnected" && this.bufferMode === "Drop") {
      while (queue.length >= this.bufferFragments) {
        queue.shift();
        while (queue.length && !(queue[0][16] & 1)) queue.shift();
      }
    }
    queue.push(...this.#frag.fragment(encodeMessage(m)));
    if (cmd && m.type === 0x00041006 /* PIPELINE_STATE */) {
      const state = /<I32 N="PipelineState">(\d+)<\/I32>/.exec(m.data)?.[1];
      if (Number(state) >= 3) cmd.done = true;
    }
    for (const w of [...this.#wake]) w();
  }

  async #run(p: ServerPipeline): Promise<ServerPipelineOutcome> {
    // further statements (ExtraCmds) run after the first in the same pipeline, `$?` carried from one to the next;
    // a terminating error in one is written as an error record and the next still runs, as PowerShell batches them
    const [first, ...more] = p.statements;
    let outcome = await this.#statement(p, first);
    for (const statement of more) {
      if (p.signal.aborted) break;
      if (outcome.state === "Failed") p.error(outcome.error);
      outcome = await this.#statement(p, statement);
    }
    return outcome;
  }

  async #statement(
    p: ServerPipeline,
    commands: ServerPipeline["statements"][number] | undefined,
  ): Promise<ServerPipelineOutcome> {
    const script = commands?.[0];
    if (!script) return { state: "Completed" };
    const args = script.args.filter((a) => a.name === null).map((a) => a.value);
    const ev = new Evaluator(this, p, args);
    try {
      const ok = await ev.script(script.cmd);
      this.#lastOk = ok;
      return { state: "Completed" };
    } catch (e) {
      this.#lastOk = false;
      if (e instanceof Exit) return { state: "Completed" };
      if (e instanceof Thrown) {
        return {
          state: "Failed",
          error: errorRecordObject({
            message: e.message,
            fullyQualifiedErrorId: e.message,
            category: 0,
            exceptionType: "System.Management.Automation.RuntimeException",
          }),
        };
      }
      throw e;
    }
  }

  /** `$global:?` as the evaluator reads it */
  get lastOk(): boolean {
    return this.#lastOk;
  }
}

class Exit extends Error {}
class Thrown extends Error {}

class Evaluator {
  /** `$s = …`: the one variable the status statement sets */
  readonly vars = new Map<string, string>();
  constructor(readonly shell: PsShell, readonly p: ServerPipeline, readonly args: PSValue[]) {}

  /** runs the statements; returns `$?` after the last */
  async script(text: string): Promise<boolean> {
    let ok = true;
    for (const raw of splitStatements(text)) {
      const s = raw.trim();
      if (!s) continue;
      if (this.p.signal.aborted) return false;
      ok = await this.statement(s);
    }
    return ok;
  }

  async statement(s: string): Promise<boolean> {
    const p = this.p;
    let m: RegExpExecArray | null;
    if (/^\$s\s*=\s*\$global:\?$/i.test(s)) return this.vars.set("s", this.shell.lastOk ? "True" : "False"), true;
    if ((m = /^"([^"$]*)\$s"$/.exec(s)) && this.vars.has("s")) return p.output(m[1] + this.vars.get("s")), true;
    const str = (t: string) => t.replace(/^'(.*)'$/s, "$1").replace(/^"(.*)"$/s, "$1");
    if ((m = /^('[^']*'|"[^"]*")$/s.exec(s))) return p.output(str(m[1])), true;
    if ((m = /^(\d+)(?:\s*\+\s*(\d+))?$/.exec(s))) return p.output(Number(m[1]) + Number(m[2] ?? 0)), true;
    if ((m = /^(?:Write-Output|echo)\s+(.*)$/is.exec(s))) return p.output(str(m[1].trim())), true;
    if ((m = /^Write-Error\s+(.*)$/is.exec(s))) {
      p.error(writeError(str(m[1].trim())));
      return false;
    }
    if ((m = /^Write-Warning\s+(.*)$/is.exec(s))) return p.warning(str(m[1].trim())), true;
    if ((m = /^throw\s+(.*)$/is.exec(s))) throw new Thrown(str(m[1].trim()));
    if ((m = /^exit\s+(-?\d+)$/i.exec(s))) {
      p.hostCall("SetShouldExit", [Number(m[1])]);
      throw new Exit();
    }
    if ((m = /^Start-Sleep\s+(?:-Seconds\s+)?(\d+)$/i.exec(s))) return await this.sleep(Number(m[1]) * 1000), true;
    if ((m = /^Start-Sleep\s+-Milliseconds\s+(\d+)$/i.exec(s))) return await this.sleep(Number(m[1])), true;
    if (
      (m = /^1\.\.(\d+)\s*\|\s*%\s*\{\s*"([^"]*)\$_"\s*(?:;\s*Start-Sleep\s+-Milliseconds\s+(\d+)\s*)?\}$/i.exec(s))
    ) {
      for (let i = 1; i <= Number(m[1]) && !p.signal.aborted; i++) {
        await this.shell.room(p.id);
        p.output(`${m[2]}${i}`);
        if (m[3]) await this.sleep(Number(m[3]));
      }
      return true;
    }
    if ((m = /^\$args\s+-join\s+'([^']*)'$/i.exec(s))) return p.output(this.args.map(String).join(m[1])), true;
    if (/^\$input\s*\|\s*%\s*\{\s*\$_\.ToUpper\(\)\s*\}$/i.test(s)) {
      for await (const v of p.input()) p.output(String(v).toUpperCase());
      return true;
    }
    if (/^\$env:COMPUTERNAME$/i.test(s)) return p.output("WIN01"), true;
    if (/^whoami$/i.test(s)) return p.output(`win01\\${this.shell.owner}`), true;
    if (/^\$PSSenderInfo\.ConfigurationName$/i.test(s)) return p.output(this.shell.configurationName), true;
    if (/^prompt$/i.test(s)) return p.output(`PS C:\\Users\\${this.shell.owner}\\Documents> `), true;
    if (/^\$global:\?$/i.test(s)) return p.output(this.shell.lastOk), true;
    const word = s.split(/\s+/)[0];
    p.error(notRecognized(word));
    return false;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.p.signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      const onAbort = () => done();
      this.p.signal.addEventListener("abort", onAbort, { once: true });
      function done() {
        clearTimeout(t);
        resolve();
      }
    });
  }
}

function splitStatements(text: string): string[] {
  // `;` inside braces or quotes belongs to the statement (the ForEach-Object loop)
  const out: string[] = [];
  let depth = 0;
  let quote = "";
  let cur = "";
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = "";
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "{") depth++;
    else if (ch === "}") depth--;
    else if ((ch === ";" || ch === "\n") && depth === 0) {
      out.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}

function record(
  message: string,
  fqid: string,
  category: number,
  categoryMessage: string,
  exceptionType: string,
  activity: string,
): PSObject {
  const r = errorRecordObject({ message, fullyQualifiedErrorId: fqid, category, exceptionType });
  r.extended.set("ErrorCategory_Activity", activity);
  r.extended.set("ErrorCategory_Message", categoryMessage);
  return r;
}

function writeError(message: string): PSObject {
  const r = record(
    message,
    "Microsoft.PowerShell.Commands.WriteErrorException",
    0,
    "NotSpecified: (:) [Write-Error], WriteErrorException",
    "Microsoft.PowerShell.Commands.WriteErrorException",
    "Write-Error",
  );
  r.extended.set("writeErrorStream", true);
  return r;
}

function notRecognized(word: string): PSObject {
  return record(
    `The term '${word}' is not recognized as a name of a cmdlet, function, script file, or executable program.\n` +
      "Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
    "CommandNotFoundException",
    13,
    `ObjectNotFound: (${word}:String) [], CommandNotFoundException`,
    "System.Management.Automation.CommandNotFoundException",
    "",
  );
}

function b64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Base64 text to bytes (the server's own reading of rsp:Arguments, rsp:Stream and creationXml). */
export function unb64(s: string): Uint8Array {
  return Uint8Array.from(atob(s.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}
