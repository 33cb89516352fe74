/**
 * Host calls (MS-PSRP §2.2.2.15–16, 2.2.2.27–28, §2.2.3.17): the server asks the client's host to write,
 * read a line, prompt, and so on. A caller implements {@linkcode PSHost} (every method optional); this
 * module decodes the calls, dispatches them, and encodes the answers in the types PowerShell's
 * RemoteHostEncoder expects. A method the host lacks is answered with an ErrorRecord, never silence, so the
 * remote pipeline cannot hang on it.
 *
 * @module
 */
import { psEnum, PSObject, PSPrimitive, PSSecureString, type PSValue, type SessionKey } from "./clixml.ts";
import { HostMethod, type HostMethodName, hostMethodName, VOID_CALL_ID } from "./constants.ts";
import { PsrpError } from "./errors.ts";
import { errorRecordObject, type ProgressRecord, readProgressRecord } from "./records.ts";

/** A decoded host call. */
export interface HostCall {
  /** -100 for void methods, which get no response */
  callId: bigint;
  methodId: number;
  method: HostMethodName | undefined;
  args: PSValue[];
  /** set for PIPELINE_HOST_CALL */
  pipelineId?: string;
}

/** A field of a Prompt call (FieldDescription). */
export interface PromptField {
  name: string;
  label: string;
  parameterTypeName: string;
  helpMessage: string;
  isMandatory: boolean;
  defaultValue: PSValue;
}

/** A choice of PromptForChoice (ChoiceDescription). */
export interface Choice {
  label: string;
  helpMessage: string;
}

/** A width and height in character cells. */
export interface HostSize {
  width: number;
  height: number;
}

/** A cell position. */
export interface HostCoordinates {
  x: number;
  y: number;
}

/** A rectangle of cells, edges included; all four -1 means the whole buffer (SetBufferContents). */
export interface HostRectangle {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** A cell of the screen buffer: a character and its colours. */
export interface HostBufferCell {
  character: string;
  foregroundColor: number;
  backgroundColor: number;
}

/** A key read by ReadKey (KeyInfo): its Windows virtual-key code, character, modifier flags, pressed or released. */
export interface HostKeyInfo {
  virtualKeyCode: number;
  character: string;
  /** ControlKeyStates flags (8 right Ctrl, 16 Shift, …); 0 for none */
  controlKeyState: number;
  keyDown: boolean;
}

/**
 * The raw UI the server reads from the HostInfo sent at open (it answers RawUI getters from that data only,
 * PowerShell ServerRemoteHostRawUserInterface.cs); `bufferSize.width` is the width PowerShell formats for.
 */
export interface HostRawUI {
  foregroundColor?: number;
  backgroundColor?: number;
  cursorPosition?: HostCoordinates;
  windowPosition?: HostCoordinates;
  cursorSize?: number;
  bufferSize?: HostSize;
  windowSize?: HostSize;
  maxWindowSize?: HostSize;
  maxPhysicalWindowSize?: HostSize;
  windowTitle?: string;
}

/**
 * The host a caller implements. Write methods may return nothing; the others return the answer (or a
 * promise of it) or throw to send the server an error.
 */
export interface PSHost {
  rawUI?: HostRawUI;
  write?(text: string, foreground?: number, background?: number): void | Promise<void>;
  writeLine?(text: string, foreground?: number, background?: number): void | Promise<void>;
  writeErrorLine?(text: string): void | Promise<void>;
  writeDebugLine?(text: string): void | Promise<void>;
  writeVerboseLine?(text: string): void | Promise<void>;
  writeWarningLine?(text: string): void | Promise<void>;
  writeProgress?(sourceId: bigint, record: ProgressRecord): void | Promise<void>;
  readLine?(): string | Promise<string>;
  /** the typed text; the library encrypts it with the session key */
  readLineAsSecureString?(): string | Promise<string>;
  prompt?(
    caption: string,
    message: string,
    fields: PromptField[],
  ): Record<string, PSValue> | Promise<Record<string, PSValue>>;
  promptForCredential?(
    caption: string,
    message: string,
    userName: string,
    targetName: string,
  ): { userName: string; password: string } | Promise<{ userName: string; password: string }>;
  promptForChoice?(
    caption: string,
    message: string,
    choices: Choice[],
    defaultChoice: number,
  ): number | Promise<number>;
  promptForChoiceMultipleSelection?(
    caption: string,
    message: string,
    choices: Choice[],
    defaultChoices: number[],
  ): number[] | Promise<number[]>;
  setShouldExit?(exitCode: number): void | Promise<void>;
  /** `$host.UI.RawUI.CursorPosition = …`: move the cursor (0-based cell of the buffer) */
  setCursorPosition?(position: HostCoordinates): void | Promise<void>;
  /** `$host.UI.RawUI.CursorSize = …`: 0 hides the cursor, otherwise a percentage of the cell */
  setCursorSize?(size: number): void | Promise<void>;
  /** `$host.UI.RawUI.WindowTitle = …` */
  setWindowTitle?(title: string): void | Promise<void>;
  /** `$host.UI.RawUI.SetBufferContents(rectangle, cell)`: fill a rectangle (Clear-Host's way of clearing) */
  setBufferContents?(rectangle: HostRectangle, fill: HostBufferCell): void | Promise<void>;
  /**
   * `$host.UI.RawUI.ReadKey(options)`: the next key. `options` are ReadKeyOptions flags: 1 AllowCtrlC, 2 NoEcho,
   * 4 IncludeKeyDown, 8 IncludeKeyUp
   */
  readKey?(options: number): HostKeyInfo | Promise<HostKeyInfo>;
  /** any other call (PushRunspace, raw UI setters, …); return its result */
  other?(call: HostCall): PSValue | Promise<PSValue>;
}

/**
 * The host call in a RUNSPACEPOOL_HOST_CALL or PIPELINE_HOST_CALL object.
 *
 * @throws {PsrpError} when `ci`, `mi` or `mp` is missing
 * @example
 * ```ts
 * import { PSObject, psEnum } from "./clixml.ts";
 * import { decodeHostCall } from "./host.ts";
 * const call = decodeHostCall(new PSObject({ extended: { ci: 1n, mi: psEnum("x", "ReadLine", 11), mp: [] } }));
 * console.assert(call.method === "ReadLine" && call.callId === 1n);
 * ```
 */
export function decodeHostCall(value: PSValue, pipelineId?: string): HostCall {
  if (!(value instanceof PSObject)) throw new PsrpError("a host call is not an object");
  const ci = value.get("ci");
  const mi = value.get("mi");
  const mp = value.get("mp");
  const methodId = mi instanceof PSObject ? Number(mi.value) : typeof mi === "number" ? mi : NaN;
  if (typeof ci !== "bigint" || !Number.isInteger(methodId)) throw new PsrpError("a host call lacks its ci or mi");
  const args = mp instanceof PSObject ? mp.items ?? [] : Array.isArray(mp) ? mp : [];
  return { callId: ci, methodId, method: hostMethodName(methodId), args, pipelineId };
}

/** A host's answer: a value, or an ErrorRecord object for the server to throw. */
export type HostAnswer = { value: PSValue } | { error: PSObject };

/**
 * The response object for a call (MS `ci`, `mi`, then `mr` or `me`).
 *
 * @example
 * ```ts
 * import { serialize } from "./clixml.ts";
 * import { hostResponseObject } from "./host.ts";
 * const o = hostResponseObject({ callId: 3n, methodId: 11, method: "ReadLine", args: [] }, { value: "yes" });
 * console.assert(serialize(o).includes('<S N="mr">yes</S>'));
 * ```
 */
export function hostResponseObject(call: HostCall, answer: HostAnswer): PSObject {
  const extended: Record<string, PSValue> = {
    ci: call.callId,
    mi: psEnum(
      "System.Management.Automation.Remoting.RemoteHostMethodId",
      call.method ?? String(call.methodId),
      call.methodId,
    ),
  };
  if ("error" in answer) extended.me = answer.error;
  else extended.mr = answer.value;
  return new PSObject({ extended });
}

function text(v: PSValue): string {
  return v === null || v === undefined ? "" : String(v instanceof PSObject ? v.toString() : v);
}

function int(v: PSValue): number {
  if (typeof v === "number") return v;
  if (v instanceof PSObject) return int(v.value ?? null);
  if (v instanceof PSPrimitive) return Number(v.value);
  return 0;
}

function list(v: PSValue): PSValue[] {
  // RemoteHostEncoder sends an array as its elements (`mae`, an ArrayList) and its lengths (`mal`)
  const elements = v instanceof PSObject && !v.items ? v.get("mae") : undefined;
  if (elements !== undefined) return list(elements);
  return v instanceof PSObject ? v.items ?? [] : Array.isArray(v) ? v : [];
}

function bag(v: PSValue): PSObject {
  return v instanceof PSObject ? v : new PSObject();
}

function choices(v: PSValue): Choice[] {
  return list(v).map((c) => ({ label: text(bag(c).get("label")), helpMessage: text(bag(c).get("helpMessage")) }));
}

function field(v: PSValue, name: string): PSValue {
  return v instanceof PSObject ? v.get(name) ?? null : null;
}

function char(v: PSValue): string {
  if (typeof v === "string") return v;
  if (v instanceof PSPrimitive && typeof v.value === "number") return String.fromCharCode(v.value);
  if (v instanceof PSPrimitive) return String(v.value);
  if (v instanceof PSObject && v.value !== undefined) return char(v.value);
  return " ";
}

function size(s: HostSize): PSObject {
  return new PSObject({ extended: { width: s.width, height: s.height } });
}

function coordinates(c: HostCoordinates): PSObject {
  return new PSObject({ extended: { x: c.x, y: c.y } });
}

/**
 * Runs one call on `host` and returns the answer, or `undefined` for a void call (which gets no response).
 * A missing method or a throw becomes an ErrorRecord answer.
 *
 * @example
 * ```ts
 * import { dispatchHostCall } from "./host.ts";
 * import { PLAIN_SESSION_KEY } from "./clixml.ts";
 * const a = await dispatchHostCall({ readLine: () => "42" }, { callId: 1n, methodId: 11, method: "ReadLine", args: [] }, PLAIN_SESSION_KEY);
 * console.assert(a !== undefined && "value" in a && a.value === "42");
 * ```
 */
export async function dispatchHostCall(
  host: PSHost | undefined,
  call: HostCall,
  key: SessionKey,
): Promise<HostAnswer | undefined> {
  const isVoid = call.callId === VOID_CALL_ID;
  try {
    const value = await run(host ?? {}, call, key);
    return isVoid ? undefined : { value: value ?? null };
  } catch (err) {
    if (isVoid) return undefined;
    const message = err instanceof NotImplemented
      ? `the local host does not implement ${call.method ?? `method ${call.methodId}`}`
      : err instanceof Error
      ? err.message
      : String(err);
    return {
      error: errorRecordObject({
        message,
        fullyQualifiedErrorId: err instanceof NotImplemented
          ? "HostMethodNotImplemented"
          : "RemoteHostExecutionException",
        exceptionType: err instanceof NotImplemented
          ? "System.Management.Automation.Host.HostException"
          : "System.Management.Automation.RemoteException",
      }),
    };
  }
}

class NotImplemented extends Error {}

function need<T>(fn: T | undefined): T {
  if (fn === undefined) throw new NotImplemented();
  return fn;
}

async function run(host: PSHost, call: HostCall, key: SessionKey): Promise<PSValue> {
  const a = call.args;
  const raw = host.rawUI ?? {};
  switch (call.methodId) {
    case HostMethod.Write1:
      return void await host.write?.(text(a[0]));
    case HostMethod.Write2:
      return void await host.write?.(text(a[2]), int(a[0]), int(a[1]));
    case HostMethod.WriteLine1:
      return void await host.writeLine?.("");
    case HostMethod.WriteLine2:
      return void await host.writeLine?.(text(a[0]));
    case HostMethod.WriteLine3:
      return void await host.writeLine?.(text(a[2]), int(a[0]), int(a[1]));
    case HostMethod.WriteErrorLine:
      return void await host.writeErrorLine?.(text(a[0]));
    case HostMethod.WriteDebugLine:
      return void await host.writeDebugLine?.(text(a[0]));
    case HostMethod.WriteVerboseLine:
      return void await host.writeVerboseLine?.(text(a[0]));
    case HostMethod.WriteWarningLine:
      return void await host.writeWarningLine?.(text(a[0]));
    case HostMethod.WriteProgress: {
      const id = a[0];
      return void await host.writeProgress?.(typeof id === "bigint" ? id : BigInt(int(id)), readProgressRecord(a[1]));
    }
    case HostMethod.SetShouldExit:
      return void await host.setShouldExit?.(int(a[0]));
    case HostMethod.ReadLine:
      return await need(host.readLine)();
    case HostMethod.ReadLineAsSecureString:
      return await PSSecureString.encrypt(await need(host.readLineAsSecureString)(), key);
    case HostMethod.Prompt: {
      const fields = list(a[2]).map((f) => {
        const o = bag(f);
        return {
          name: text(o.get("name")),
          label: text(o.get("label")),
          parameterTypeName: text(o.get("parameterTypeName")),
          helpMessage: text(o.get("helpMessage")),
          isMandatory: o.get("isMandatory") === true,
          defaultValue: o.get("defaultValue") ?? null,
        };
      });
      const answers = await need(host.prompt)(text(a[0]), text(a[1]), fields);
      return new Map<PSValue, PSValue>(Object.entries(answers));
    }
    case HostMethod.PromptForCredential1:
    case HostMethod.PromptForCredential2: {
      const c = await need(host.promptForCredential)(text(a[0]), text(a[1]), text(a[2]), text(a[3]));
      return new PSObject({
        typeNames: ["System.Management.Automation.PSCredential", "System.Object"],
        adapted: { UserName: c.userName, Password: await PSSecureString.encrypt(c.password, key) },
      });
    }
    case HostMethod.PromptForChoice:
      return await need(host.promptForChoice)(text(a[0]), text(a[1]), choices(a[2]), int(a[3]));
    case HostMethod.PromptForChoiceMultipleSelection: {
      const picked = await need(host.promptForChoiceMultipleSelection)(
        text(a[0]),
        text(a[1]),
        choices(a[2]),
        list(a[3]).map(int),
      );
      return new PSObject({ typeNames: ["System.Collections.ArrayList", "System.Object"], items: picked });
    }
    case HostMethod.SetCursorPosition:
      return void await host.setCursorPosition?.({ x: int(field(a[0], "x")), y: int(field(a[0], "y")) });
    case HostMethod.SetCursorSize:
      return void await host.setCursorSize?.(int(a[0]));
    case HostMethod.SetWindowTitle:
      return void await host.setWindowTitle?.(text(a[0]));
    case HostMethod.SetBufferContents2: {
      const [r, c] = [a[0], a[1]];
      return void await host.setBufferContents?.(
        {
          left: int(field(r, "left")),
          top: int(field(r, "top")),
          right: int(field(r, "right")),
          bottom: int(field(r, "bottom")),
        },
        {
          character: char(field(c, "character")),
          foregroundColor: int(field(c, "foregroundColor")),
          backgroundColor: int(field(c, "backgroundColor")),
        },
      );
    }
    case HostMethod.ReadKey: {
      const k = await need(host.readKey)(int(a[0]));
      // RemoteHostEncoder rebuilds the KeyInfo struct from its fields, by name
      return new PSObject({
        extended: {
          virtualKeyCode: k.virtualKeyCode,
          character: new PSPrimitive("C", k.character.charCodeAt(0) || 0),
          controlKeyState: k.controlKeyState,
          keyDown: k.keyDown,
        },
      });
    }
    case HostMethod.GetForegroundColor:
      return need(raw.foregroundColor);
    case HostMethod.GetBackgroundColor:
      return need(raw.backgroundColor);
    case HostMethod.GetCursorPosition:
      return coordinates(need(raw.cursorPosition));
    case HostMethod.GetWindowPosition:
      return coordinates(need(raw.windowPosition));
    case HostMethod.GetCursorSize:
      return need(raw.cursorSize);
    case HostMethod.GetBufferSize:
      return size(need(raw.bufferSize));
    case HostMethod.GetWindowSize:
      return size(need(raw.windowSize));
    case HostMethod.GetMaxWindowSize:
      return size(need(raw.maxWindowSize));
    case HostMethod.GetMaxPhysicalWindowSize:
      return size(need(raw.maxPhysicalWindowSize));
    case HostMethod.GetWindowTitle:
      return need(raw.windowTitle);
  }
  return await need(host.other)(call);
}

/** Options of {@linkcode hostInfoObject}. */
export interface HostInfoOptions {
  /** a pipeline's HostInfo: use the pool's host (PowerShell's default) */
  useRunspaceHost?: boolean;
}

/**
 * The HostInfo object of INIT_RUNSPACEPOOL and CREATE_PIPELINE (MS-PSRP §2.2.3.14): which parts of a host
 * exist, and the raw UI's data under `_hostDefaultData` (a Hashtable keyed 0–9, each value a bag of `T`
 * type name and `V` value).
 *
 * @example
 * ```ts
 * import { hostInfoObject } from "./host.ts";
 * console.assert(hostInfoObject(undefined).get("_isHostNull") === true);
 * console.assert(hostInfoObject({ rawUI: { bufferSize: { width: 120, height: 50 } } }).get("_isHostRawUINull") === false);
 * ```
 */
export function hostInfoObject(host: PSHost | undefined, options: HostInfoOptions = {}): PSObject {
  const extended: Record<string, PSValue> = {
    _isHostNull: !host,
    _isHostUINull: !host,
    _isHostRawUINull: !host?.rawUI,
    _useRunspaceHost: options.useRunspaceHost ?? !host,
  };
  if (host?.rawUI && !options.useRunspaceHost) {
    const r = host.rawUI;
    const window = r.windowSize ?? r.bufferSize ?? { width: 120, height: 50 };
    const buffer = r.bufferSize ?? window;
    const entry = (t: string, v: PSValue) => new PSObject({ extended: { T: t, V: v } });
    const C = "System.Management.Automation.Host.Coordinates";
    const S = "System.Management.Automation.Host.Size";
    const data = new Map<PSValue, PSValue>([
      [0, entry("System.ConsoleColor", r.foregroundColor ?? 7)],
      [1, entry("System.ConsoleColor", r.backgroundColor ?? 0)],
      [2, entry(C, coordinates(r.cursorPosition ?? { x: 0, y: 0 }))],
      [3, entry(C, coordinates(r.windowPosition ?? { x: 0, y: 0 }))],
      [4, entry("System.Int32", r.cursorSize ?? 25)],
      [5, entry(S, size(buffer))],
      [6, entry(S, size(window))],
      [7, entry(S, size(r.maxWindowSize ?? window))],
      [8, entry(S, size(r.maxPhysicalWindowSize ?? window))],
      [9, entry("System.String", r.windowTitle ?? "")],
    ]);
    extended._hostDefaultData = new PSObject({ extended: { data } });
  }
  return new PSObject({ extended });
}
