/**
 * `--target` by name: an instance ID (`i-…`), a managed-node ID (`mi-…`) or an ECS target
 * (`ecs:…`) is used as given; anything else is a Name tag, looked up with EC2 DescribeInstances
 * (`tag:Name`, state `running`) and SSM DescribeInstanceInformation (`tag:Name`, PingStatus `Online`,
 * for managed nodes outside EC2), both through AWS's SDK (`@aws-sdk/client-ec2` loaded only for a lookup).
 *
 * @module
 */
import { type Prompter, TransportError } from "../../plugins/mod.ts";
import { callSsm, clientOptions, type ControlPlaneConfig, sdkError } from "./control_plane.ts";
import { loadAwsSdkEc2 } from "./sdk_loader.ts";

/** One instance a name matched. */
export interface NamedInstance {
  id: string;
  name: string;
  /** where it is, for the user choosing among several: private IP or computer name, and platform */
  detail: string;
}

const ID = /^(i-[0-9a-f]{8}([0-9a-f]{9})?|mi-[0-9a-f]{17}|ecs:.+)$/;

/** True when `target` is an ID SSM takes as is, not a name to look up. */
export function isTargetId(target: string): boolean {
  return ID.test(target);
}

async function ec2ByName(config: ControlPlaneConfig, name: string): Promise<NamedInstance[]> {
  const sdk = await loadAwsSdkEc2();
  const { endpoint: _ssmEndpoint, ...rest } = config; // --endpoint-url names the SSM endpoint only
  const client = new sdk.EC2Client(clientOptions(rest));
  const found: NamedInstance[] = [];
  try {
    let token: string | undefined;
    do {
      const out = await client.send(
        new sdk.DescribeInstancesCommand({
          Filters: [{ Name: "tag:Name", Values: [name] }, { Name: "instance-state-name", Values: ["running"] }],
          NextToken: token,
        }),
        { abortSignal: config.signal },
      );
      for (const r of out.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          if (!i.InstanceId) continue;
          const where = [i.PrivateIpAddress, i.Placement?.AvailabilityZone, i.InstanceType].filter(Boolean);
          found.push({ id: i.InstanceId, name, detail: where.join(" ") });
        }
      }
      token = out.NextToken;
    } while (token && found.length < 1000);
  } catch (cause) {
    throw sdkError("EC2", "DescribeInstances", cause);
  } finally {
    client.destroy();
  }
  return found;
}

async function managedByName(config: ControlPlaneConfig, name: string): Promise<NamedInstance[]> {
  const found: NamedInstance[] = [];
  let token: string | undefined;
  do {
    const out = await callSsm(config, "DescribeInstanceInformation", {
      // Online only, as EC2's `running`: a stopped instance's agent shows ConnectionLost
      Filters: [{ Key: "tag:Name", Values: [name] }, { Key: "PingStatus", Values: ["Online"] }],
      NextToken: token,
    });
    const list = Array.isArray(out.InstanceInformationList) ? out.InstanceInformationList : [];
    for (const info of list as Record<string, unknown>[]) {
      if (typeof info.InstanceId !== "string") continue;
      const where = [info.IPAddress, info.ComputerName, info.PlatformName, info.PingStatus].filter(Boolean);
      found.push({ id: info.InstanceId, name, detail: where.join(" ") });
    }
    token = typeof out.NextToken === "string" && out.NextToken !== "" ? out.NextToken : undefined;
  } while (token && found.length < 1000);
  return found;
}

/**
 * Looks `name` up in EC2 and SSM together; instances both know are listed once. When one lookup
 * fails (a role without `ec2:DescribeInstances`, say) the other's matches stand.
 *
 * @throws {RemoteError} a lookup's error when nothing matched and a lookup failed: "not found" would
 *   hide the reason
 */
export async function findByName(config: ControlPlaneConfig, name: string): Promise<NamedInstance[]> {
  const results = await Promise.allSettled([ec2ByName(config, name), managedByName(config, name)]);
  const byId = new Map<string, NamedInstance>();
  for (const r of results) {
    if (r.status === "fulfilled") { for (const i of r.value) if (!byId.has(i.id)) byId.set(i.id, i); }
  }
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (byId.size === 0 && failed) throw failed.reason;
  return [...byId.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The instance ID for `target`: as given when it is an ID, else the one instance its Name tag
 * matches. Several matches are listed and, on a terminal, the user picks one.
 *
 * @throws {TransportError} `notFound` when no running instance has the name; `usage` when several
 *   do and nobody can choose
 */
export async function resolveTarget(
  config: ControlPlaneConfig,
  target: string,
  prompt: Prompter,
  notice: (line: string) => void,
): Promise<string> {
  if (isTargetId(target)) return target;
  const found = await findByName(config, target);
  if (found.length === 0) {
    throw new TransportError(`no running instance is named ${target} in ${config.region}`, {
      layer: "config",
      code: "notFound",
      hint: "check the Name tag and --region, or pass the instance ID (i-…, mi-…)",
    });
  }
  if (found.length === 1) return found[0].id;
  const listed = found.map((i) => `${i.id}${i.detail ? ` (${i.detail})` : ""}`);
  if (!prompt.interactive) {
    throw new TransportError(`${found.length} running instances are named ${target}: ${listed.join(", ")}`, {
      layer: "config",
      code: "usage",
      hint: "pass one instance ID with --target",
    });
  }
  notice(`${found.length} running instances are named ${target}:`);
  listed.forEach((line, n) => notice(`  ${n + 1}) ${line}`));
  const question = `Which one (1-${found.length})? `;
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = (await prompt.ask(question, { what: `which instance named ${target}` })).trim();
    const n = Number(answer);
    if (Number.isInteger(n) && n >= 1 && n <= found.length) return found[n - 1].id;
    const byId = found.find((i) => i.id === answer);
    if (byId) return byId.id;
  }
  throw new TransportError(`no instance chosen among those named ${target}`, {
    layer: "config",
    code: "usage",
    hint: "pass one instance ID with --target",
  });
}
