/**
 * Helpers for transports that run local processes (the local transport, exec-CLI plugins) or wait on a
 * remote one with a grace period before forcing it.
 *
 * @module
 */

/** True when `promise` settles within `ms`; false when the time runs out first. The timer never outlives it. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal` to the process group `pid` leads, then to `pid` itself; a process already gone is no error. */
export function killGroup(pid: number, signal: Deno.Signal): void {
  for (const target of [-pid, pid]) {
    try {
      Deno.kill(target, signal);
    } catch {
      // gone already
    }
  }
}
