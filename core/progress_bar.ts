/**
 * The progress line of `remote copy` on a terminal, as scp draws it: the file, its share done, the bytes in
 * place, the rate of this run and the time left at that rate, redrawn in place at most every 200 ms and
 * once more, with the time taken, when the file is done.
 *
 * @example
 * ```ts
 * import { ProgressBar } from "./progress_bar.ts";
 * const bar = new ProgressBar((line) => void Deno.stderr.writeSync(new TextEncoder().encode(line)), () => 80);
 * bar.update({ path: "a.bin", bytes: 512, size: 1024, rate: 256, etaSeconds: 2, totalBytes: 512, done: false });
 * ```
 *
 * @module
 */
import type { CopyProgress } from "../plugins/mod.ts";

const REDRAW_MS = 200;

/** `1023B`, `1.5KB`, `20MB`, `3.2GB`: binary units as scp shows them. */
export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n}B` : `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}

/** `00:07`, `12:34`, `1:02:03`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** One line for `p`, `columns` wide at most: the name is shortened from the left to fit. */
export function progressLine(p: CopyProgress, columns: number, elapsedSeconds: number): string {
  const pct = p.size === 0 ? 100 : Math.floor((p.bytes / p.size) * 100);
  const time = p.done
    ? `${formatDuration(elapsedSeconds)}    `
    : p.etaSeconds === undefined
    ? "--:-- ETA"
    : `${formatDuration(p.etaSeconds)} ETA`;
  const right = `${String(pct).padStart(3)}% ${formatBytes(p.bytes).padStart(6)} ${
    (formatBytes(p.rate) + "/s").padStart(9)
  } ${time.padStart(9)}`;
  const room = Math.max(1, columns - right.length - 2);
  const name = [...p.path].map((c) => c < " " || c === "\x7f" ? "?" : c);
  const shown = name.length > room ? "…" + name.slice(name.length - room + 1).join("") : name.join("");
  return `${shown.padEnd(room)}  ${right}`;
}

/** Draws progress reports in place; each file ends on its own line. */
export class ProgressBar {
  #lastDraw = -Infinity;
  #current: string | undefined;
  #started = 0;

  constructor(private readonly write: (text: string) => void, private readonly columns: () => number) {}

  /** Takes one progress report (the engine's callback). */
  update = (p: CopyProgress): void => {
    const now = performance.now();
    if (p.path !== this.#current) {
      this.#current = p.path;
      this.#started = now;
      this.#lastDraw = -Infinity;
    }
    if (!p.done && now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    const line = progressLine(p, Math.max(20, this.columns() - 1), (now - this.#started) / 1000);
    this.write(`\r${line}${p.done ? "\n" : ""}`);
    if (p.done) this.#current = undefined;
  };

  /** Ends a line left open by a copy that stopped mid-file. */
  finish(): void {
    if (this.#current !== undefined) this.write("\n");
    this.#current = undefined;
  }
}
