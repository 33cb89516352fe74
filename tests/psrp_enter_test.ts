/**
 * `remote enter --configuration-name powershell` in a real PTY against the real pwsh 7.6.9 (locally, `pwsh -s`:
 * the same code path as the SSH subsystem): the raw UI answered from the terminal, Write-Progress as a
 * progress line, PromptForChoice as PowerShell's console asks it, and secrets typed ahead of their prompt.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { type PtySession, spawnInPty } from "./pty.ts";
import { pwshDir } from "./psrp_pwsh.ts";
import { runRemote, tempHome } from "./run_remote.ts";
import { ScreenModel } from "../plugins/screen_model.ts";

const TIMEOUT = 60_000;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PROMPT = /\[localhost\]: PS \/\S*> $/;

/** A local PowerShell session in a 100×30 PTY; `cursorAt` (1-based row;col) answers the terminal's DSR 6. */
async function session(
  env: Record<string, string>,
  cursorAt?: string,
): Promise<PtySession & { stopAnswering(): void }> {
  const pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", "--configuration-name", "powershell"],
    {
      cols: 100,
      rows: 30,
      env: { ...env, PATH: `${await pwshDir()}:/usr/bin:/bin`, POWERSHELL_TELEMETRY_OPTOUT: "1" },
    },
  );
  // a terminal answers "where is the cursor" (ESC [ 6 n) with ESC [ row ; col R
  let answered = 0;
  const timer = cursorAt === undefined ? undefined : setInterval(() => {
    const asked = pty.output().split("\x1b[6n").length - 1;
    for (; answered < asked; answered++) pty.write(`\x1b[${cursorAt}R`);
  }, 10);
  return Object.assign(pty, { stopAnswering: () => clearInterval(timer) });
}

Deno.test("enter --configuration-name powershell answers the raw UI from the terminal: cursor position, size, moving the cursor, title, cursor size", async () => {
  await using home = await tempHome();
  await using pty = await session(home.env, "12;7");
  try {
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write(
      "$p = $host.UI.RawUI.CursorPosition; $w = $host.UI.RawUI.WindowSize; 'at ' + $p.X + ',' + $p.Y + ' in ' + $w.Width + 'x' + $w.Height\r",
    );
    await pty.waitFor(/at 6,11 in 100x30\r$/m, TIMEOUT); // after the DSR question the session sent
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.resize(90, 20);
    pty.write("$b = $host.UI.RawUI.BufferSize; 'buffer ' + $b.Width + 'x' + $b.Height\r");
    await pty.waitFor(/buffer 90x20\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write(
      "$host.UI.RawUI.CursorPosition = @{X=2;Y=3}; $host.UI.RawUI.WindowTitle = 'build 7'; $host.UI.RawUI.CursorSize = 0; 'moved'\r",
    );
    await pty.waitFor(/moved\r$/m, TIMEOUT);
    const moved = pty.output().slice(pty.output().lastIndexOf("'moved'"));
    assert(moved.includes("\x1b[4;3H"), JSON.stringify(moved));
    assert(moved.includes("\x1b]0;build 7\x07"), JSON.stringify(moved));
    assert(moved.includes("\x1b[?25l"), JSON.stringify(moved));
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("exit\r");
    assertEquals((await pty.exited).code, 0);
    // the cursor the session hid is shown again for the shell after it
    assert(pty.output().endsWith("\x1b[?25h"), JSON.stringify(pty.output().slice(-40)));
  } finally {
    pty.stopAnswering();
  }
});

Deno.test("enter --configuration-name powershell shows Write-Progress as one line on a terminal, and clears it when the command ends", async () => {
  await using home = await tempHome();
  await using pty = await session(home.env, "1;1");
  try {
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write(
      "1..3 | % { Write-Progress -Activity Copying -Status \"item $_\" -PercentComplete ($_*30); Start-Sleep -Milliseconds 600 }; 'copied'\r",
    );
    await pty.waitFor("Copying [=========                     ] 30% item 1", TIMEOUT);
    await pty.waitFor("Copying [==================            ] 60% item 2", TIMEOUT);
    await pty.waitFor("Copying [===========================   ] 90% item 3", TIMEOUT);
    // the progress line is erased before other output and, once the command ends, for good
    // deno-lint-ignore no-control-regex
    await pty.waitFor(/\r\x1b\[Kcopied\r\n/, TIMEOUT);
    // deno-lint-ignore no-control-regex
    await pty.waitFor(/\r\x1b\[K\[localhost\]: PS \/\S*> $/, TIMEOUT);
    pty.write("exit\r");
    assertEquals((await pty.exited).code, 0);
  } finally {
    pty.stopAnswering();
  }
});

Deno.test("enter --configuration-name powershell shows no progress when stdin is not a terminal", async () => {
  await using home = await tempHome();
  const r = await runRemote(["enter", "--configuration-name", "powershell"], {
    env: { ...home.env, PATH: `${await pwshDir()}:/usr/bin:/bin`, POWERSHELL_TELEMETRY_OPTOUT: "1" },
    stdin: "Write-Progress -Activity Copying -Status half -PercentComplete 50; 'copied'\nexit\n",
    timeoutMs: TIMEOUT,
  });
  assertEquals(r.code, 0, r.stderr);
  match(r.stdout, /^\[localhost\]: PS \/\S*> copied\n\[localhost\]: PS \/\S*> $/);
});

Deno.test("enter --configuration-name powershell asks PromptForChoice as PowerShell's console does: Remove-Item -Confirm, help, defaults, several answers", async () => {
  await using home = await tempHome();
  await using pty = await session(home.env, "1;1");
  try {
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("$f = New-TemporaryFile; Remove-Item $f -Confirm; 'exists ' + (Test-Path $f)\r");
    await pty.waitFor(
      /\r\nConfirm\r\nAre you sure you want to perform this action\?\r\nPerforming the operation "Remove File" on target "\S+"\.\r\n\[Y\] Yes {2}\[A\] Yes to All {2}\[N\] No {2}\[L\] No to All {2}\[\?\] Help \(default is "Y"\): $/,
      TIMEOUT,
    );
    pty.write("y\r");
    await pty.waitFor(/^exists False\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);

    pty.write(
      "$c = $host.UI.PromptForChoice('Deploy', 'Which stage?', @('&Build', '&Test', 'Ship'), 1); 'picked ' + $c\r",
    );
    await pty.waitFor(
      /\r\nDeploy\r\nWhich stage\?\r\n\[B\] Build {2}\[T\] Test {2}\[\] Ship {2}\[\?\] Help \(default is "T"\): $/,
      TIMEOUT,
    );
    pty.write("?\r");
    await pty.waitFor(
      /^B - \r\nT - \r\nShip - \r\n\[B\] Build {2}\[T\] Test {2}\[\] Ship {2}\[\?\] Help \(default is "T"\): $/m,
      TIMEOUT,
    );
    pty.write("nonsense\r");
    await pty.waitFor('(default is "T"): ', TIMEOUT);
    pty.write("ship\r");
    await pty.waitFor(/^picked 2\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("$c = $host.UI.PromptForChoice('', 'Go?', @('&Yes', '&No'), 0); 'picked ' + $c\r");
    await pty.waitFor('(default is "Y"): ', TIMEOUT);
    pty.write("\r");
    await pty.waitFor(/^picked 0\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);

    pty.write(
      "$m = $host.UI.PromptForChoice('Fruit', 'Pick some', [Management.Automation.Host.ChoiceDescription[]]@('&Apple', '&Banana', '&Cherry'), [int[]]@(0, 1)); 'picked ' + ($m -join '+')\r",
    );
    await pty.waitFor(
      /\r\nFruit\r\nPick some\r\n\[A\] Apple {2}\r\n\[B\] Banana {2}\r\n\[C\] Cherry {2}\r\n\[\?\] Help \r\n\(default choices are A,B\)\r\nChoice\[0\]: $/,
      TIMEOUT,
    );
    pty.write("c\r");
    await pty.waitFor("Choice[1]: ", TIMEOUT);
    pty.write("a\r");
    await pty.waitFor("Choice[2]: ", TIMEOUT);
    pty.write("\r");
    await pty.waitFor(/^picked 2\+0\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("exit\r");
    assertEquals((await pty.exited).code, 0);
  } finally {
    pty.stopAnswering();
  }
});

Deno.test("enter --configuration-name powershell never echoes a secret typed ahead of its prompt", async () => {
  await using home = await tempHome();
  await using pty = await session(home.env, "1;1");
  try {
    await pty.waitFor(PROMPT, TIMEOUT);
    // the secret is typed with the command, before the question (a separate host call) has even arrived
    pty.write(
      "$s = Read-Host -AsSecureString 'Secret'; 'length ' + [Net.NetworkCredential]::new('', $s).Password.Length\rhunter2\r",
    );
    await pty.waitFor(/^length 7\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write(
      "Write-Host 'Token: ' -NoNewline; $t = $host.UI.ReadLineAsSecureString(); 'length ' + [Net.NetworkCredential]::new('', $t).Password.Length\rswordfish\r",
    );
    await pty.waitFor(/Token: \r\r\nlength 9\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    // a command typed ahead while another runs shows after the next prompt, not in the middle of the output
    pty.write("Start-Sleep -Milliseconds 500; 'slept'\r'next'\r");
    // deno-lint-ignore no-control-regex
    await pty.waitFor(/slept\r\n\[localhost\]: PS \/\S*> 'next'\r\r\n(?:\x1b\[6n)?next\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("exit\r");
    assertEquals((await pty.exited).code, 0);
    assert(!pty.output().includes("hunter2"), "the typed-ahead secret was echoed");
    assert(!pty.output().includes("swordfish"), "the typed-ahead secret was echoed");
  } finally {
    pty.stopAnswering();
  }
});

Deno.test("enter --configuration-name powershell answers $host.UI.RawUI.ReadKey with the next key, echoed unless NoEcho", async () => {
  await using home = await tempHome();
  await using pty = await session(home.env, "1;1");
  try {
    await pty.waitFor(PROMPT, TIMEOUT);
    // typed ahead of the call: the key waits for it, unechoed
    pty.write(
      "$k = $host.UI.RawUI.ReadKey('NoEcho,IncludeKeyDown'); 'key ' + $k.Character + ' ' + $k.VirtualKeyCode\rq",
    );
    await pty.waitFor(/key q 81\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("$k = $host.UI.RawUI.ReadKey('IncludeKeyDown'); ' code ' + $k.VirtualKeyCode\r");
    await new Promise((r) => setTimeout(r, 500));
    pty.write("\x1b[A");
    await pty.waitFor(/ code 38\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("$k = $host.UI.RawUI.ReadKey('IncludeKeyDown'); ' got ' + $k.Character\r");
    await new Promise((r) => setTimeout(r, 500));
    pty.write("z");
    await pty.waitFor(/z got z\r$/m, TIMEOUT);
    await pty.waitFor(PROMPT, TIMEOUT);
    pty.write("exit\r");
    assertEquals((await pty.exited).code, 0);
    const o = pty.output();
    const shown = o.slice(o.indexOf("$k.VirtualKeyCode\r") + "$k.VirtualKeyCode\r".length, o.indexOf("key q 81"));
    assert(!shown.includes("q"), `NoEcho echoed the key: ${JSON.stringify(shown)}`);
  } finally {
    pty.stopAnswering();
  }
});

Deno.test("enter --configuration-name powershell shows Write-Host's colours on a terminal, and none with NO_COLOR", async () => {
  for (const noColor of ["", "1"]) {
    await using home = await tempHome();
    await using pty = await session({ ...home.env, NO_COLOR: noColor }, "1;1");
    try {
      await pty.waitFor(PROMPT, TIMEOUT);
      // a local pwsh inherits NO_COLOR (set, even empty, it renders plain text itself); over SSH it would not
      pty.write(
        "$PSStyle.OutputRendering = 'Host'; Write-Host -ForegroundColor Red alarm; Write-Host -BackgroundColor DarkBlue calm; Write-Host plain\r",
      );
      await pty.waitFor(/plain\r\n/, TIMEOUT);
      const o = pty.output();
      const shown = o.slice(o.indexOf("Write-Host plain\r") + "Write-Host plain\r".length);
      if (noColor) {
        assertEquals(shown.replace("\x1b[6n", ""), "\r\nalarm\r\ncalm\r\nplain\r\n");
      } else {
        assert(shown.includes("\x1b[91malarm\x1b[0m\r\n"), JSON.stringify(shown));
        assert(shown.includes("\x1b[44mcalm\x1b[0m\r\n"), JSON.stringify(shown));
        assert(shown.includes("\nplain\r\n"), JSON.stringify(shown));
      }
      await pty.waitFor(PROMPT, TIMEOUT);
      pty.write("exit\r");
      assertEquals((await pty.exited).code, 0);
    } finally {
      pty.stopAnswering();
    }
  }
});

/**
 * Waits until the terminal (a model of it fed the PTY's output) shows `prompt` and `line` on its last rows, wrapped as
 * the terminal wraps them, with the cursor after `line`'s first `cursorAt` characters.
 */
async function screenShows(pty: PtySession, columns: number, prompt: string, line: string, cursorAt: number) {
  const want = new ScreenModel(columns, 30);
  want.write(prompt + line.slice(0, cursorAt));
  const cursor = want.cursor();
  want.write(line.slice(cursorAt));
  const rows = want.text().split("\n");
  let seen = "";
  for (const deadline = Date.now() + TIMEOUT; Date.now() < deadline;) {
    const screen = new ScreenModel(columns, 30);
    screen.write(pty.output());
    const all = screen.text().split("\n");
    const top = all.length - rows.length;
    const at = screen.cursor();
    if (
      JSON.stringify(all.slice(top)) === JSON.stringify(rows) && at.row === top + cursor.row && at.col === cursor.col
    ) {
      return;
    }
    seen = `${screen.text()}\n(cursor at ${at.row - top},${at.col}; wanted ${cursor.row},${cursor.col})`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the screen never showed ${JSON.stringify(rows)}; it shows:\n${seen}`);
}

Deno.test("enter --configuration-name powershell edits the line in place: Left/Right, Home/End, Delete, words, on a line that wraps", async () => {
  await using home = await tempHome();
  const columns = 40;
  await using pty = await spawnInPty(
    Deno.execPath(),
    ["run", "-A", "--quiet", MAIN, "enter", "--configuration-name", "powershell"],
    {
      cols: columns,
      rows: 30,
      env: { ...home.env, PATH: `${await pwshDir()}:/usr/bin:/bin`, POWERSHELL_TELEMETRY_OPTOUT: "1" },
    },
  );
  await pty.waitFor(PROMPT, TIMEOUT);
  const shown = pty.output();
  const prompt = shown.slice(shown.lastIndexOf("\n") + 1);
  const [left, right, home_, end, del] = ["\x1b[D", "\x1b[C", "\x1b[H", "\x1b[F", "\x1b[3~"];
  // a line longer than the terminal's row, edited at its start and end: two rows and more
  pty.write("'" + "a".repeat(50) + "'.Length");
  pty.write(home_ + right + del.repeat(5) + end + " + 100" + "\x01" + "\x05" + "\x1b[1;5D" + "2");
  let line = "'" + "a".repeat(45) + "'.Length + 2100";
  await screenShows(pty, columns, prompt, line, line.length - 3);
  pty.write("\r");
  await pty.waitFor(/^2145\r$/m, TIMEOUT);
  await pty.waitFor(PROMPT, TIMEOUT);
  // Up recalls it; Ctrl-Left twice, Delete and an insertion in the middle of the wrapped line, Ctrl-Right
  pty.write("\x1b[A" + "\x1b[1;5D".repeat(2) + del.repeat(6) + "Count" + left.repeat(5) + "\x1b[1;5C");
  line = "'" + "a".repeat(45) + "'.Count + 2100";
  await screenShows(pty, columns, prompt, line, line.indexOf(" +"));
  pty.write("\r");
  await pty.waitFor(/^2101\r$/m, TIMEOUT);
  await pty.waitFor(PROMPT, TIMEOUT);
  pty.write("exit\r");
  assertEquals((await pty.exited).code, 0);
});
