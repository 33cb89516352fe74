/**
 * install.sh from a checkout, as a newcomer runs it: into a fresh prefix, twice (idempotent), then
 * `remote --version` from another folder. Here `deno compile` cannot fetch its runtime, so this also
 * covers the launcher fallback; where it can, the compiled binary is checked the same way.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { tempHome } from "./run_remote.ts";

const root = new URL("../", import.meta.url).pathname;

Deno.test("install.sh installs a working remote into --prefix, idempotently, and says when bin is not on PATH", async () => {
  await using home = await tempHome();
  const prefix = `${home.dir}/prefix`;
  const path = `${Deno.execPath().replace(/\/[^/]+$/, "")}:/usr/bin:/bin`;
  const install = () =>
    new Deno.Command("sh", {
      args: [`${root}install.sh`, "--prefix", prefix],
      cwd: home.dir,
      env: { ...home.env, PATH: path },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  for (let round = 0; round < 2; round++) {
    const out = await install();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    match(stderr, new RegExp(`installed ${prefix}/bin/remote|built ${prefix}/bin/remote`));
    match(stderr, new RegExp(`${prefix}/bin is not on your PATH`));
  }
  const run = await new Deno.Command(`${prefix}/bin/remote`, {
    args: ["--version"],
    cwd: "/",
    env: { ...home.env, PATH: path },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(run.code, 0, new TextDecoder().decode(run.stderr));
  match(
    new TextDecoder().decode(run.stdout),
    /^remote \d+\.\d+\.\d+\n.*\ntransports: ssh, winrm, ssm, local, container, k8s\n$/s,
  );
  assertEquals((await Deno.stat(`${prefix}/bin/remote`)).mode! & 0o755, 0o755);
});

Deno.test("install.sh rejects an unknown option with a hint", async () => {
  const out = await new Deno.Command("sh", {
    args: [`${root}install.sh`, "--frobnicate"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assertEquals(out.code, 2);
  assertEquals(
    new TextDecoder().decode(out.stderr),
    "install.sh: unknown option --frobnicate\nhint: install.sh [--prefix DIR] [--version X.Y.Z]\n",
  );
});
