/**
 * The wire between `remote` and its SSH connection-reuse master: length-prefixed frames over a unix
 * socket, with no I/O here (bytes in, frames out) so it tests offline. Also where the socket lives and
 * which connection a request may share.
 *
 * A frame is a 4-byte big-endian length of what follows, one type byte, then the payload (raw bytes
 * for stream data, UTF-8 JSON for control).
 *
 * @module
 */
import {
  encodeFrame as encodeRawFrame,
  FrameSplitter,
  type FramingOptions,
  matchWildcard,
  type RawFrame,
} from "../../plugins/mod.ts";
import { sha256 } from "../../plugins/mod.ts";
import { parseSshTime } from "./ssh_time.ts";

/** Frame types; `C_` from the client, `M_` from the master. */
export const Frame = {
  /** JSON {@linkcode ReuseRequest}: the first frame a client sends */
  C_REQUEST: 1,
  /** bytes for the command's stdin */
  C_STDIN: 2,
  /** end of stdin */
  C_STDIN_EOF: 3,
  /** JSON `{ name }`: a signal for the remote command */
  C_SIGNAL: 4,
  /** JSON `{ id, answer }` or `{ id, error }`: the reply to an `M_ASK` */
  C_ANSWER: 5,
  /** JSON `{ env }`: the client's values of the variables an `M_SENDENV` asked for */
  C_SENDENV: 6,
  /** the command started */
  M_OPENED: 16,
  M_STDOUT: 17,
  M_STDERR: 18,
  /** JSON {@linkcode WireStatus}: how the command ended; the last frame */
  M_EXIT: 19,
  /** JSON {@linkcode WireError}: connecting or starting failed; the last frame */
  M_ERROR: 20,
  /** JSON `{ id, question, secret, what }`: the master needs the user (password, passphrase, host key) */
  M_ASK: 21,
  /** JSON `{ line }`: a notice for the user */
  M_NOTICE: 22,
  /** JSON `{ patterns }`: the SendEnv patterns of the connection; the client answers `C_SENDENV` */
  M_SENDENV: 23,
} as const;

/** What a client asks the master to run. */
export interface ReuseRequest {
  target: { transport: string; host: string; port?: number; user?: string; display: string };
  /** the transport parameters, as bound by the core */
  parameters: Record<string, unknown>;
  command: string;
  /** open this subsystem (PowerShell's `powershell`) instead of running `command` */
  subsystem?: string;
  env?: Record<string, string>;
  /** whether a person can answer prompts on the client's side */
  interactive: boolean;
  /**
   * run only on a connection already held for this target (shell completion): never connect; with none,
   * the master answers `M_ERROR` with code `notFound` at once
   */
  heldOnly?: boolean;
}

/** An exit status as sent on the wire (`lost` carries a message, not an Error). */
export type WireStatus =
  | { kind: "exited"; code: number }
  | { kind: "signaled"; signal: string; code: number; coreDumped?: boolean }
  | { kind: "lost"; message: string };

/** A RemoteError as sent on the wire. */
export interface WireError {
  /** an ExitCode name of core/errors.ts */
  code: string;
  message: string;
  hint?: string;
}

/** Largest frame accepted; bigger means a broken or hostile peer. */
export const MAX_FRAME = 1 << 24;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** This socket's frames: the length counts the type byte and the payload. */
const FRAMING: FramingOptions = { lengthCountsType: true, maxPayload: MAX_FRAME - 1 };

/** Encodes one frame. */
export function encodeFrame(type: number, payload: Uint8Array | unknown = new Uint8Array(0)): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : encoder.encode(JSON.stringify(payload));
  return encodeRawFrame(type, body, FRAMING);
}

/** Parses a JSON frame payload. */
export function framePayloadJson(payload: Uint8Array): unknown {
  return JSON.parse(decoder.decode(payload));
}

/** One decoded frame. */
export type DecodedFrame = RawFrame;

/** Splits a byte stream into frames; push bytes as they come. */
export class FrameDecoder {
  readonly #splitter = new FrameSplitter(FRAMING, {
    badLength(length) {
      throw new Error(`bad frame length ${length}`);
    },
  });

  /**
   * Adds bytes and returns the frames now complete.
   *
   * @throws {Error} when a frame is larger than {@linkcode MAX_FRAME} or empty
   */
  push(bytes: Uint8Array): DecodedFrame[] {
    return this.#splitter.push(bytes);
  }
}

/**
 * The key of a shareable connection: everything that decides where it goes and who it authenticates
 * as (host, port, user, keys, agent, config file, options, jump hosts). Two requests share a
 * connection only when their keys are equal.
 */
export function connectionKey(request: Pick<ReuseRequest, "target" | "parameters">): string {
  const { host, port, user } = request.target;
  const parameters = Object.keys(request.parameters).sort().map((k) => [k, request.parameters[k]]);
  return JSON.stringify([host, port ?? null, user ?? null, parameters]);
}

/** Environment variables that decide identity and files: a master serves only clients that agree on them. */
const IDENTITY_ENV = ["HOME", "USER", "SSH_AUTH_SOCK", "XDG_CONFIG_HOME"] as const;

/** Bumped when the frames change, so a client never talks to a master of another version (see the hash below). */
const PROTOCOL = "3"; // 3: ReuseRequest.subsystem

/**
 * Where the master for this user and environment listens: `$XDG_RUNTIME_DIR/remote/` (else a 0700
 * directory in the temp dir), one socket per uid, HOME and agent socket.
 */
export function masterSocketPath(
  env: { get(name: string): string | undefined } = Deno.env,
): Promise<string> {
  const uid = Deno.uid() ?? 0;
  const runtime = env.get("XDG_RUNTIME_DIR");
  const dir = runtime ? `${runtime}/remote` : `${env.get("TMPDIR") || "/tmp"}/remote-${uid}`;
  // not node:crypto (it starts Deno's Node layer, ~10 ms) nor crypto.subtle (a hop through a blocking thread)
  const identity = [`protocol=${PROTOCOL}`, ...IDENTITY_ENV.map((n) => `${n}=${env.get(n) ?? ""}`)];
  const digest = sha256(encoder.encode(identity.join("\0")));
  const hash = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  // a promise still, as before: callers need not change
  return Promise.resolve(`${dir}/ssh-${uid}-${hash}.sock`);
}

/** Default idle time before the master exits, as OpenSSH's ControlPersist of 60 s. */
export const DEFAULT_IDLE_MS = 60_000;

/**
 * The master's idle time: `-o ControlPersist=` (ssh's time format: seconds, `30s`, `5m`, `1m30s`; `yes` =
 * forever, `no` = 0) or `REMOTE_SSH_PERSIST`, else {@linkcode DEFAULT_IDLE_MS}.
 */
export function idleMsFrom(options: Record<string, string> | undefined, env = Deno.env): number {
  const key = Object.keys(options ?? {}).find((k) => k.toLowerCase() === "controlpersist");
  const text = (key ? options?.[key] : undefined) ?? env.get("REMOTE_SSH_PERSIST");
  if (text === undefined || text === "") return DEFAULT_IDLE_MS;
  const t = text.trim().toLowerCase();
  if (t === "yes") return 0x7fffffff;
  if (t === "no") return 0;
  const seconds = parseSshTime(t);
  return seconds === undefined ? DEFAULT_IDLE_MS : Math.min(seconds * 1000, 0x7fffffff);
}

/**
 * The environment the master runs with: what the SSH transport and the runtime need (identity, agent,
 * files, locale, terminal type), never the rest of the starting client's environment (passwords, cloud keys).
 */
export function masterEnvironment(env: Record<string, string> = Deno.env.toObject()): Record<string, string> {
  const keep = new Set([
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "SSH_AUTH_SOCK",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "DENO_DIR",
    "LANG",
    "LANGUAGE",
    "TERM",
    "TZ",
    "NO_COLOR",
  ]);
  return Object.fromEntries(Object.entries(env).filter(([name]) => keep.has(name) || name.startsWith("LC_")));
}

/** The variables of `env` that SendEnv `patterns` select. */
export function selectSendEnv(patterns: readonly string[], env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => patterns.some((p) => matchWildcard(p, name))));
}

/**
 * Makes the socket's directory if missing (0700), then refuses it unless it is a directory of this
 * user that nobody else can enter: another user's directory could hold a fake master that reads our
 * commands and passwords.
 *
 * @throws {Error} saying what is wrong with the directory
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new Error(`cannot create ${dir}: ${(err as Error).message}`);
  }
  const info = await Deno.lstat(dir);
  const uid = Deno.uid();
  if (!info.isDirectory || (uid !== null && info.uid !== uid) || ((info.mode ?? 0) & 0o077) !== 0) {
    const why = !info.isDirectory
      ? "is not a directory"
      : uid !== null && info.uid !== uid
      ? `belongs to another user (uid ${info.uid})`
      : `can be entered by other users (mode ${((info.mode ?? 0) & 0o777).toString(8)})`;
    throw new Error(`${dir} ${why}`);
  }
}
