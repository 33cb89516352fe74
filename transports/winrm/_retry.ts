/**
 * How the PowerShell client rides out a broken connection: the retry window, the waits between attempts, and which
 * failures are a connection lost rather than an answer. Shared by the session channel (psrp.ts) and `remote receive`
 * (psrp_sessions.ts).
 *
 * @module
 */
import { TransportError } from "../../plugins/mod.ts";
import { type RobustOperation, WinrmFaultError } from "./client.ts";
import { HttpError } from "./http_connection.ts";

/**
 * How long a broken connection is retried by default: Windows PowerShell's client over WinRM says "Attempting to
 * reconnect for up to 4 minutes" (its robust-connection retry time, MaxRetryConnectionTime, read from the WinRM
 * client); MS-WSMV 3.2.2's Request Retry Timer gives enhanced CIM operations 180 s.
 */
export const DEFAULT_RETRY_CONNECTION_MS = 240_000;

/** the first wait after a break; each next one doubles */
const FIRST_RETRY_DELAY_MS = 250;
/** the longest wait between two attempts to reach the host again */
const MAX_RETRY_DELAY_MS = 10_000;

/** Retrying options a caller passes down. */
export interface RetryOptions {
  /** the window, in ms, counted from the break (default {@linkcode DEFAULT_RETRY_CONNECTION_MS}); 0: no retry */
  windowMs?: number;
  /** one-line notices for the user: reconnecting, and reconnected */
  notice?: (line: string) => void;
  /** Ctrl-C: stops waiting */
  signal?: AbortSignal;
}

/** A robust-connection operation (MS-WSMV 3.1.4.1.39) not sent yet. */
export function newOperation(): RobustOperation {
  return { id: newOperationId(), retransmit: false, received: 0 };
}

/**
 * After a break, what the request goes as: the same operation retransmitted when the host keeps replies; otherwise a new
 * operation (a retransmission with mustUnderstand="true" is for hosts that understand it, MS-WSMV 1.7).
 */
export function againAfterBreak(operation: RobustOperation, robustHost: boolean): void {
  if (robustHost) operation.retransmit = true;
  else Object.assign(operation, { id: newOperationId(), messageId: undefined });
}

function newOperationId(): string {
  return `uuid:${crypto.randomUUID().toUpperCase()}`;
}

/** the wait before attempt `n` (from 0): 0.25 s, 0.5 s, 1 s… at most {@linkcode MAX_RETRY_DELAY_MS} */
export function retryDelay(n: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** Math.min(n, 16));
}

/** the connection broke before the reply was whole */
export function broken(e: unknown): boolean {
  return e instanceof TransportError && e.layer === "channel";
}

/**
 * a new connection to the host cannot be made (refused, no route, no name, no answer to connecting); a request that
 * got no reply in time is not this (exit 242, as before the break)
 */
export function unreachable(e: unknown): boolean {
  if (!(e instanceof TransportError) || e instanceof WinrmFaultError) return false;
  return e.layer === "socket" || e.layer === "dns" || (e.layer === "timeout" && !(e.cause instanceof HttpError));
}

/** resolves after `ms` with true, or at once with false when `signal` aborts first; leaves no timer behind */
export function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** the notice when the connection broke */
export function lostNotice(host: string, windowMs: number): string {
  return `remote: lost the connection to ${host}; reconnecting for up to ${spell(windowMs)} (Ctrl-C gives up)`;
}

/** the notice when the host answers again */
export function backNotice(host: string): string {
  return `remote: reconnected to ${host}`;
}

/** 240000 → "4 minutes", 1500 → "1.5 seconds" */
function spell(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return ms === 60_000 ? "1 minute" : `${ms / 60_000} minutes`;
  const s = Math.round(ms / 100) / 10;
  return s === 1 ? "1 second" : `${s} seconds`;
}
