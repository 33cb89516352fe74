import { match, ok as assert, strictEqual } from "node:assert/strict";
import { formatBytes, formatDuration, ProgressBar, progressLine } from "./progress_bar.ts";

Deno.test("formatBytes() and formatDuration() read as scp's progress meter", () => {
  strictEqual(formatBytes(0), "0B");
  strictEqual(formatBytes(1023), "1023B");
  strictEqual(formatBytes(1536), "1.5KB");
  strictEqual(formatBytes(200 * 1024 * 1024), "200MB");
  strictEqual(formatDuration(7), "00:07");
  strictEqual(formatDuration(3723), "1:02:03");
});

Deno.test("progressLine() fits the width, shortens the name from the left and escapes control characters", () => {
  const p = { path: "db1:/very/long/path/to/a\nfile.bin", bytes: 512, size: 1024, rate: 2048, totalBytes: 512 };
  const line = progressLine({ ...p, etaSeconds: 3, done: false }, 50, 1);
  strictEqual(line.length, 50);
  match(line, /^….*a\?file\.bin +50% +512B +2\.0KB\/s +00:03 ETA$/);
  match(
    progressLine({ ...p, bytes: 1024, etaSeconds: 0, done: true }, 80, 65),
    /100% +1\.0KB +2\.0KB\/s +01:05/,
  );
  match(
    progressLine({ ...p, size: 0, bytes: 0, etaSeconds: undefined, done: false }, 80, 0),
    /100%.*--:-- ETA$/,
  );
});

Deno.test("ProgressBar draws in place and ends each file on its own line", () => {
  const out: string[] = [];
  const bar = new ProgressBar((t) => out.push(t), () => 60);
  const base = { path: "a", size: 10, rate: 1, etaSeconds: 1, totalBytes: 0 };
  bar.update({ ...base, bytes: 1, done: false });
  bar.update({ ...base, bytes: 2, done: false }); // within 200 ms: not drawn
  bar.update({ ...base, bytes: 10, done: true });
  bar.finish();
  strictEqual(out.length, 2);
  assert(out[0].startsWith("\r") && !out[0].endsWith("\n"));
  assert(out[1].endsWith("\n") && out[1].includes("100%"));
});
