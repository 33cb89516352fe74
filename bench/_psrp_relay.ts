/**
 * A `powershell` subsystem for bench/psrp_bench.ts that runs the real server (its arguments) and copies the
 * PSRP lines both ways, appending each to a log as `<ms> <c|s> <element>` (c: from the client), so the
 * bench can count the packets and round trips of one run of either client.
 *
 * Run (as sshd's subsystem): deno run --allow-all bench/_psrp_relay.ts <log> <program> [args…]
 *
 * @module
 */
const [log, program, ...args] = Deno.args;
const file = await Deno.open(log, { write: true, create: true, append: true });
const encoder = new TextEncoder();
const t0 = performance.now();
let queue = Promise.resolve();
const note = (who: "c" | "s", chunk: Uint8Array, carry: { text: string }) => {
  carry.text += new TextDecoder().decode(chunk);
  const lines = carry.text.split("\n");
  carry.text = lines.pop() ?? "";
  const text = lines.map((l) => `${(performance.now() - t0).toFixed(1)} ${who} ${/^<(\w+)/.exec(l)?.[1] ?? "?"}\n`)
    .join("");
  if (text) queue = queue.then(() => file.write(encoder.encode(text)).then(() => {}));
};
const child = new Deno.Command(program, { args, stdin: "piped", stdout: "piped", stderr: "inherit" }).spawn();
const fromClient = { text: "" };
const fromServer = { text: "" };
await Promise.all([
  Deno.stdin.readable.pipeThrough(
    new TransformStream({ transform: (c, ctl) => (note("c", c, fromClient), ctl.enqueue(c)) }),
  ).pipeTo(child.stdin).catch(() => {}),
  child.stdout.pipeThrough(new TransformStream({ transform: (c, ctl) => (note("s", c, fromServer), ctl.enqueue(c)) }))
    .pipeTo(Deno.stdout.writable).catch(() => {}),
]);
await queue;
file.close();
Deno.exit((await child.status).code);
