/**
 * The stand-in for the compiled binary, which cannot be built here (`deno compile` needs a runtime
 * download): bundle remote into one module in a temp folder, then run it from another folder with no
 * source tree and no deno.json, only the PTY addon the bundle carries beside it (node_modules/).
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import process from "node:process";
import { startSshd } from "./harness/sshd.ts";
import { sshOptions, tempHome } from "./run_remote.ts";
import { startSsmEmulator, TEST_CREDENTIALS } from "./ssm_emulator.ts";

const root = new URL("../", import.meta.url).pathname;

async function run(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, cwd, env, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("the bundle runs from outside the source tree: --version, a real invoke over ssh, and an SSM shell by Name tag", async () => {
  await using home = await tempHome();
  const build = await Deno.makeTempDir({ prefix: "remote-bundle-" });
  const outside = await Deno.makeTempDir({ prefix: "remote-outside-" });
  try {
    const bundled = await run(
      Deno.execPath(),
      ["run", "-A", "scripts/bundle.ts", "--output", `${build}/remote.js`],
      root,
      {
        ...home.env,
        PATH: Deno.env.get("PATH") ?? "",
      },
    );
    assertEquals(bundled.code, 0, bundled.stderr);
    await Deno.copyFile(`${build}/remote.js`, `${outside}/remote.js`);
    // the only thing beside the bundle: node-pty's binary package for this machine, nothing else of node_modules
    const carried: string[] = [];
    for await (const e of Deno.readDir(`${build}/node_modules/@lydell`)) carried.push(e.name);
    assertEquals(carried, [`node-pty-${process.platform}-${process.arch}`]);
    await Deno.rename(`${build}/node_modules`, `${outside}/node_modules`);
    const remote = (args: string[]) =>
      run(
        Deno.execPath(),
        ["run", "-A", "--no-config", "--no-lock", "--quiet", `${outside}/remote.js`, ...args],
        outside,
        {
          ...home.env,
          PATH: Deno.env.get("PATH") ?? "",
        },
      );

    const version = await remote(["--version"]);
    assertEquals(version.code, 0, version.stderr);
    match(version.stdout, /^remote \d+\.\d+\.\d+\ndeno .*\ntransports: ssh, winrm, ssm, local, container, k8s\n$/);

    await using sshd = await startSshd();
    const knownHosts = `${home.dir}/known_hosts`;
    await Deno.writeTextFile(knownHosts, sshd.knownHostsLine() + "\n");
    const invoked = await remote([
      "invoke",
      ...sshOptions(sshd, knownHosts),
      `${sshd.user}@127.0.0.1`,
      "--",
      "echo bundled-ok; exit 5",
    ]);
    assertEquals(invoked, { code: 5, stdout: "bundled-ok\n", stderr: "" });
    // the local transport loads its PTY addon from beside the bundle
    assertEquals(await remote(["invoke", "local://localhost", "--", "echo local-ok; exit 6"]), {
      code: 6,
      stdout: "local-ok\n",
      stderr: "",
    });

    // AWS's SDK travels packed in the bundle and is made a module on first use: an SSM shell by Name tag
    // loads both of its parts (credentials and SSM, then EC2)
    await using emu = await startSsmEmulator({ instances: [{ id: "i-0aaaaaaaaaaaaaaa1", name: "web-1" }] });
    const ssm = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", "--no-lock", "--quiet", `${outside}/remote.js`, "enter", "--target", "web-1"],
      cwd: outside,
      env: {
        ...home.env,
        PATH: Deno.env.get("PATH") ?? "",
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        AWS_REGION: emu.region,
        AWS_ENDPOINT_URL: emu.endpoint,
        AWS_CONFIG_FILE: `${home.dir}/no-aws-config`,
        AWS_SHARED_CREDENTIALS_FILE: `${home.dir}/no-aws-credentials`,
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = ssm.stdin.getWriter();
    await writer.write(new TextEncoder().encode("exit\n"));
    await writer.close();
    const shell = await ssm.output();
    const d = new TextDecoder();
    assertEquals({ code: shell.code, stdout: d.decode(shell.stdout), stderr: d.decode(shell.stderr) }, {
      code: 0,
      stdout: "$ exit\r\n",
      stderr: "",
    });
    assertEquals(emu.stats.startedTargets, ["i-0aaaaaaaaaaaaaaa1"]);
  } finally {
    await Deno.remove(build, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});
