/**
 * Typed views of the records PowerShell streams back (MS-PSRP §2.2.2.19–2.2.2.26, §2.2.3.15–16): errors,
 * warnings, verbose and debug lines, progress and information, read from their CLIXML objects; and an
 * ErrorRecord to send, for a host call that failed.
 *
 * @module
 */
import { PSObject, type PSValue } from "./clixml.ts";

/** An ErrorRecord, the fields a user sees. */
export interface ErrorRecord {
  /** the message PowerShell shows: ErrorDetails, else the exception's message, else ToString */
  message: string;
  fullyQualifiedErrorId: string;
  /** ErrorCategory value */
  category: number;
  /** e.g. `NotSpecified: (:) [Write-Error], WriteErrorException` */
  categoryMessage: string;
  /** the exception's first type name, `Deserialized.` stripped */
  exceptionType: string;
  targetObject: PSValue;
  scriptStackTrace?: string;
  positionMessage?: string;
  raw: PSObject;
}

/** A warning, verbose or debug record. */
export interface InformationalRecord {
  message: string;
  raw: PSObject;
}

/** A ProgressRecord. */
export interface ProgressRecord {
  activity: string;
  activityId: number;
  statusDescription: string;
  currentOperation: string | null;
  parentActivityId: number;
  percentComplete: number;
  /** 0 Processing, 1 Completed */
  recordType: number;
  secondsRemaining: number;
}

/** An InformationRecord (Write-Information, Write-Host). */
export interface InformationRecord {
  messageData: PSValue;
  source: string;
  timeGenerated: string;
  tags: string[];
  user: string;
  computer: string;
  processId: number;
  raw: PSObject;
}

function str(v: PSValue): string {
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : String(v);
}

function num(v: PSValue, fallback = 0): number {
  if (typeof v === "number") return v;
  if (v instanceof PSObject) return num(v.value ?? null, fallback);
  if (v !== null && v !== undefined && typeof v === "object" && "value" in v) return Number(v.value);
  return typeof v === "bigint" ? Number(v) : fallback;
}

function asObject(v: PSValue): PSObject {
  return v instanceof PSObject ? v : new PSObject({ value: v });
}

/**
 * The fields of an ErrorRecord object.
 *
 * @example
 * ```ts
 * import { PSObject } from "./clixml.ts";
 * import { readErrorRecord } from "./records.ts";
 * const e = readErrorRecord(new PSObject({ toStringText: "boom", extended: { FullyQualifiedErrorId: "x" } }));
 * console.assert(e.message === "boom" && e.fullyQualifiedErrorId === "x");
 * ```
 */
export function readErrorRecord(value: PSValue): ErrorRecord {
  const o = asObject(value);
  const exception = o.get("Exception");
  const exceptionMessage = exception instanceof PSObject ? str(exception.get("Message")) : "";
  const exceptionType = exception instanceof PSObject
    ? (exception.typeNames[0] ?? "").replace(/^Deserialized\./, "")
    : "";
  const details = str(o.get("ErrorDetails_Message"));
  const scriptStackTrace = o.get("ErrorDetails_ScriptStackTrace");
  const position = o.get("InvocationInfo_PositionMessage");
  return {
    message: details || exceptionMessage || o.toString(),
    fullyQualifiedErrorId: str(o.get("FullyQualifiedErrorId")),
    category: num(o.get("ErrorCategory_Category")),
    categoryMessage: str(o.get("ErrorCategory_Message")),
    exceptionType,
    targetObject: o.get("TargetObject") ?? null,
    scriptStackTrace: scriptStackTrace ? str(scriptStackTrace) : undefined,
    positionMessage: position ? str(position) : undefined,
    raw: o,
  };
}

/**
 * The message of a warning, verbose or debug record.
 *
 * @example
 * ```ts
 * import { PSObject } from "./clixml.ts";
 * import { readInformationalRecord } from "./records.ts";
 * const r = readInformationalRecord(new PSObject({ extended: { InformationalRecord_Message: "careful" } }));
 * console.assert(r.message === "careful");
 * ```
 */
export function readInformationalRecord(value: PSValue): InformationalRecord {
  const o = asObject(value);
  return { message: str(o.get("InformationalRecord_Message") ?? o.get("Message") ?? o.toString()), raw: o };
}

/**
 * The fields of a ProgressRecord: the PROGRESS_RECORD shape (MS-PSRP §2.2.2.25), the host call's
 * deserialised object, and the `<PR>` element all read.
 *
 * @example
 * ```ts
 * import { PSObject } from "./clixml.ts";
 * import { readProgressRecord } from "./records.ts";
 * const p = readProgressRecord(new PSObject({ extended: { Activity: "copy", ActivityId: 1, PercentComplete: 50 } }));
 * console.assert(p.activity === "copy" && p.percentComplete === 50);
 * ```
 */
export function readProgressRecord(value: PSValue): ProgressRecord {
  const o = asObject(value);
  const type = o.get("Type") ?? o.get("RecordType");
  const op = o.get("CurrentOperation");
  return {
    activity: str(o.get("Activity")),
    activityId: num(o.get("ActivityId")),
    statusDescription: str(o.get("StatusDescription")),
    currentOperation: op === null || op === undefined ? null : str(op),
    parentActivityId: num(o.get("ParentActivityId"), -1),
    percentComplete: num(o.get("PercentComplete"), -1),
    recordType: typeof type === "string" ? (type === "Completed" ? 1 : 0) : num(type),
    secondsRemaining: num(o.get("SecondsRemaining"), -1),
  };
}

/**
 * The fields of an InformationRecord.
 *
 * @example
 * ```ts
 * import { PSObject } from "./clixml.ts";
 * import { readInformationRecord } from "./records.ts";
 * const r = readInformationRecord(new PSObject({ extended: { MessageData: "hi", Source: "Write-Information" } }));
 * console.assert(r.messageData === "hi" && r.source === "Write-Information");
 * ```
 */
export function readInformationRecord(value: PSValue): InformationRecord {
  const o = asObject(value);
  const tags = o.get("Tags");
  return {
    messageData: o.get("MessageData") ?? null,
    source: str(o.get("Source")),
    timeGenerated: str(o.get("TimeGenerated")),
    tags: tags instanceof PSObject && tags.items ? tags.items.map(str) : [],
    user: str(o.get("User")),
    computer: str(o.get("Computer")),
    processId: num(o.get("ProcessId")),
    raw: o,
  };
}

/** What {@linkcode errorRecordObject} needs. */
export interface ErrorRecordInit {
  message: string;
  fullyQualifiedErrorId: string;
  /** ErrorCategory, default 0 NotSpecified */
  category?: number;
  /** default System.Exception */
  exceptionType?: string;
}

/**
 * An ErrorRecord object to send, e.g. as a host call's `me` when the local host cannot answer.
 *
 * @example
 * ```ts
 * import { errorRecordObject } from "./records.ts";
 * const o = errorRecordObject({ message: "no terminal", fullyQualifiedErrorId: "NoTerminal" });
 * console.assert(o.get("FullyQualifiedErrorId") === "NoTerminal");
 * ```
 */
export function errorRecordObject(init: ErrorRecordInit): PSObject {
  const exceptionType = init.exceptionType ?? "System.Exception";
  const exception = new PSObject({
    typeNames: [exceptionType, "System.Exception", "System.Object"].filter((t, i, a) => a.indexOf(t) === i),
    toStringText: `${exceptionType}: ${init.message}`,
    adapted: {
      Message: init.message,
      Data: new Map(),
      HelpLink: null,
      HResult: -2146233088,
      InnerException: null,
      Source: null,
      StackTrace: null,
      TargetSite: null,
    },
  });
  return new PSObject({
    typeNames: ["System.Management.Automation.ErrorRecord", "System.Object"],
    toStringText: init.message,
    extended: {
      Exception: exception,
      TargetObject: null,
      FullyQualifiedErrorId: init.fullyQualifiedErrorId,
      InvocationInfo: null,
      ErrorCategory_Category: init.category ?? 0,
      ErrorCategory_Activity: "",
      ErrorCategory_Reason: exceptionType.split(".").pop() ?? "",
      ErrorCategory_TargetName: "",
      ErrorCategory_TargetType: "",
      ErrorCategory_Message: `NotSpecified: (:) [], ${exceptionType.split(".").pop()}`,
      SerializeExtendedInfo: false,
    },
  });
}
