import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { EXEC_TAG, signalScript } from "./mod.ts";

Deno.test("the container transport's modules load no node: built-in (the Node layer costs a run 20 to 60 ms)", async () => {
  const mod = new URL("./mod.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", mod],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assertEquals(out.code, 0);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
  assertEquals(graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("node:")), []);
});

Deno.test("signalScript() signals every tagged process with one kill, in numeric PID order (99 before 100)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // a /proc of four processes: 99 (the command's shell), 100 (its child), 101 (untagged), 7 (another exec's)
    const procs: [string, string][] = [["99", "T1"], ["100", "T1"], ["101", ""], ["7", "T2"]];
    for (const [pid, tag] of procs) {
      await Deno.mkdir(`${dir}/proc/${pid}`, { recursive: true });
      await Deno.writeTextFile(`${dir}/proc/${pid}/environ`, `PATH=/bin\0${tag ? `${EXEC_TAG}=${tag}\0` : ""}HOME=/`);
    }
    // kill, a shell function here, logs each call: the script is run as the container would run it, by busybox sh
    const script = `kill() { echo "kill $*" >> ${dir}/log; }; ${signalScript("T1", "INT", `${dir}/proc`)}`;
    const run = await new Deno.Command("/bin/busybox", { args: ["sh", "-c", script], env: { PATH: "/bin:/usr/bin" } })
      .output();
    assertEquals(run.code, 0);
    assertEquals(await Deno.readTextFile(`${dir}/log`), "kill -s INT 99 100\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
