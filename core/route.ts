/**
 * Routing: from a resolved parameter set to the transport that serves it and the target it connects
 * to. This is where "a scheme picks the transport, else the set, else the user's mapping, else the
 * default" lives.
 *
 * @module
 */
import type { UserConfig } from "./config.ts";
import { hostMapping } from "./config.ts";
import { RemoteError, UsageError } from "./errors.ts";
import { flagOf, type OpenContext, type Target, type TransportManifest } from "../plugins/mod.ts";
import type { Resolution } from "./parameter_set.ts";
import {
  isPowerShellScheme,
  parseTarget,
  POWERSHELL_SCHEME_PREFIX,
  schemeOf,
  transportForScheme,
  transportForSet,
  withoutPassword,
} from "./target.ts";
import type { TransportEntry } from "./transport_catalog.ts";

/** Where one connection goes. */
export interface Route {
  entry: TransportEntry;
  target: Target;
  /** the bound values the transport receives: the core's own selectors and switches removed */
  parameters: Record<string, unknown>;
  /** `--via`: opens streams through another transport's connection (core/via.ts), handed on as `OpenContext.dial` */
  dial?: OpenContext["dial"];
  /**
   * the PowerShell configuration a `pwsh+ssh://` target asks for (the transport's default, else `powershell`):
   * as if `--configuration-name` had named it, which wins when given
   */
  configuration?: string;
}

/**
 * The parameters a verb declares itself (`declareParameters(…).names` of its module in
 * `core/verbs/`): their values stay with the core, are never passed to a transport, and are never
 * another transport's option.
 */
export type CoreParameters = ReadonlySet<string>;

/**
 * Chooses the transport and target for one target string (or none, when a transport's own set
 * names the target, e.g. `--computer-name`).
 *
 * @throws {UsageError} when the target is malformed, the scheme unknown, or options belong to
 * another transport
 */
export function route(
  resolution: Resolution,
  core: CoreParameters,
  entries: readonly TransportEntry[],
  config: UserConfig,
  targetText?: string,
  /** "ignore" when several targets share the options, and {@linkcode refuseUnusedOptions} checks them */
  foreignOptions: "refuse" | "ignore" = "refuse",
): Route {
  const manifests = entries.map((e) => e.manifest);
  const values = resolution.values;
  let entry: TransportEntry | undefined;
  let parsed;
  const setOwner = transportForSet(resolution.set, manifests);
  const defaultTransport = config.defaults.transport ?? "ssh";
  const defaultSetOwner = manifests.find((m) => m.id === defaultTransport);
  const isHostSet = targetText !== undefined && (setOwner === undefined || setOwner === defaultSetOwner);

  if (isHostSet && targetText !== undefined) {
    const scheme = schemeOf(targetText);
    // the transport a scheme names says what its host part is (a container ID is no DNS name)
    const schemeOwner = scheme === undefined ? undefined : transportForScheme(scheme, manifests);
    parsed = parseTarget(targetText, schemeOwner?.targetHost);
    if (parsed.scheme) {
      const m = transportForScheme(parsed.scheme, manifests);
      if (!m) {
        throw new UsageError(`no transport handles the scheme '${parsed.scheme}://'`, {
          hint: `known schemes: ${knownSchemes(entries).join(", ")}; see: remote plugin list`,
        });
      }
      entry = entries.find((e) => e.manifest === m);
    } else {
      const mapped = hostMapping(config, parsed.host);
      const id = mapped?.transport ?? defaultTransport;
      entry = entries.find((e) => e.manifest.id === id);
      if (!entry) {
        throw new RemoteError("config", `the configured transport '${id}' is not known`, {
          hint: "check the transport names in your config file against: remote plugin list",
        });
      }
      if (mapped) {
        parsed = { ...parsed, port: parsed.port ?? mapped.port, user: parsed.user ?? mapped.user };
      }
    }
  } else if (setOwner) {
    entry = entries.find((e) => e.manifest === setOwner);
    const targetParameter = setOwner.parameters.find((p) => p.sets?.[resolution.set]?.mandatory);
    const raw = targetParameter ? values[targetParameter.name] : undefined;
    if (raw instanceof URL) {
      const url = withoutPassword(raw);
      parsed = {
        scheme: url.protocol.replace(/:$/, ""),
        host: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port ? Number(url.port) : undefined,
        user: url.username ? decodeURIComponent(url.username) : undefined,
        path: url.pathname,
        display: url.href,
      };
    } else if (typeof raw === "string") {
      parsed = parseTarget(raw, setOwner.targetHost);
    }
  }
  if (!entry || !parsed) {
    throw new UsageError("no target given", { hint: `name a host, e.g. remote ${resolution.verb} admin@db1` });
  }
  const manifest = entry.manifest;
  const own = new Set(manifest.parameters.map((p) => p.name));
  if (foreignOptions === "refuse") refuseUnusedOptions(resolution, core, manifests, [manifest], parsed.host);
  const parameters: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) {
    if (!core.has(name) && own.has(name)) {
      parameters[name] = value instanceof URL ? withoutPassword(value) : value;
    }
  }
  return {
    entry,
    parameters,
    ...isPowerShellScheme(parsed.scheme) && { configuration: manifest.powershell?.default ?? "powershell" },
    target: {
      transport: manifest.id,
      host: parsed.host,
      // The HostName rule of Enter-PSSession: user and port in the string win over --user-name, --port.
      port: parsed.port ?? numberOrUndefined(values.Port),
      user: parsed.user ?? stringOrUndefined(values.UserName) ?? credentialUser(values.Credential),
      path: parsed.path,
      display: parsed.display,
    },
  };
}

/**
 * Refuses options that none of `used` (the transports the targets go to) takes: with one target an
 * option of another transport is a mistake, and with several (`invoke db1 winrm://w1 -- …`) each
 * transport takes its own options and only one no target uses is.
 *
 * @throws {UsageError} naming the option, its owners and how to pick one
 */
export function refuseUnusedOptions(
  resolution: Resolution,
  core: CoreParameters,
  manifests: readonly TransportManifest[],
  used: readonly TransportManifest[],
  exampleHost: string,
): void {
  for (const name of resolution.given) {
    if (core.has(name) || used.some((m) => m.parameters.some((p) => p.name === name))) continue;
    const owners = manifests.filter((m) => m.parameters.some((p) => p.name === name)).map((m) => m.id);
    const spec = manifests.flatMap((m) => m.parameters).find((p) => p.name === name);
    const flag = spec ? flagOf(spec) : name;
    throw new UsageError(
      `--${flag} is an option of ${owners.join(", ")}, not of ${[...new Set(used.map((m) => m.id))].join(", ")}`,
      {
        hint: `drop it, or pick the transport with a scheme, e.g. ${owners[0]}://${exampleHost}`,
      },
    );
  }
}

function knownSchemes(entries: readonly TransportEntry[]): string[] {
  return entries.flatMap((e) => {
    const own = [e.manifest.id, ...(e.manifest.schemes ?? [])];
    return e.manifest.capabilities.includes("psrp") ? [...own, `${POWERSHELL_SCHEME_PREFIX}${e.manifest.id}`] : own;
  });
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

function credentialUser(value: unknown): string | undefined {
  if (typeof value === "object" && value !== null && "user" in value && typeof value.user === "string") {
    return value.user;
  }
  return undefined;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
