/**
 * Loads AWS's SDK for JavaScript on first use of SSM. The specifiers are made at run time on purpose:
 * Deno resolves the npm packages behind every literal `import()` in the module graph when a run starts,
 * which cost every command, ssh's included, about 6 ms of CPU from source (measured with `perf stat`:
 * `remote --version` 30.8 → 24.3 ms). The builds still carry the modules: `deno compile` embeds them
 * through `--include` (scripts/build.ts), and the bundle packs them and installs `__remote_lazy`
 * (scripts/bundle.ts).
 *
 * @module
 */

/** The SDK's entry modules beside this file, for the build scripts. */
export const AWS_SDK_MODULES = ["transports/ssm/aws_sdk.ts", "transports/ssm/aws_sdk_ec2.ts"] as const;

type LazyLoader = (name: string) => Promise<unknown>;

function load(name: string): Promise<unknown> {
  const bundled = (globalThis as { __remote_lazy?: LazyLoader }).__remote_lazy;
  if (bundled) return bundled(`./${name}`);
  return import(new URL(`./${name}`, import.meta.url).href);
}

/** StartSession and friends, credentials and shared config: `./aws_sdk.ts`. */
export function loadAwsSdk(): Promise<typeof import("./aws_sdk.ts")> {
  return load("aws_sdk.ts") as Promise<typeof import("./aws_sdk.ts")>;
}

/** The EC2 client for name lookups: `./aws_sdk_ec2.ts`. */
export function loadAwsSdkEc2(): Promise<typeof import("./aws_sdk_ec2.ts")> {
  return load("aws_sdk_ec2.ts") as Promise<typeof import("./aws_sdk_ec2.ts")>;
}
