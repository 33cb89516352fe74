/**
 * ssh's time format, as OpenSSH's convtime() (misc.c) reads it for ConnectTimeout, ServerAliveInterval
 * and ControlPersist: a run of numbers each followed by a unit (`s`, `m`, `h`, `d`, `w`, any case), a
 * bare number counting seconds and only as the last part: `30`, `1m30s`, `2h`.
 *
 * @module
 */

const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * The seconds `text` stands for, or undefined when it is not ssh's time format or is over 2^31 - 1 s.
 *
 * @example
 * ```ts
 * import { parseSshTime } from "./ssh_time.ts";
 * console.assert(parseSshTime("1m30s") === 90);
 * ```
 */
export function parseSshTime(text: string): number | undefined {
  const re = /([0-9]+)([sSmMhHdDwW]?)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) break;
    total += Number(m[1]) * UNIT_SECONDS[m[2].toLowerCase()];
    pos = re.lastIndex;
    if (m[2] === "" && pos < text.length) break; // a bare number must be last
  }
  if (text === "" || pos !== text.length || !Number.isSafeInteger(total) || total > 2 ** 31 - 1) return undefined;
  return total;
}
