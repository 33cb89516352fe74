/**
 * The built-in transports: manifests (data) now, code on first use. Each `import()` has a literal
 * specifier so `deno compile` and `deno bundle` embed the module while it stays lazy.
 *
 * @module
 */
import type { TransportEntry } from "../core/transport_catalog.ts";
import { manifest as container } from "./container/manifest.ts";
import { manifest as k8s } from "./k8s/manifest.ts";
import { manifest as local } from "./local/manifest.ts";
import { manifest as ssh } from "./ssh/manifest.ts";
import { manifest as ssm } from "./ssm/manifest.ts";
import { manifest as winrm } from "./winrm/manifest.ts";

const builtin = { kind: "builtin" } as const;

/** Built-in transports, in the order `remote plugin list` shows them. */
export const builtinTransports: readonly TransportEntry[] = [
  { manifest: ssh, origin: builtin, load: () => import("./ssh/mod.ts") },
  { manifest: winrm, origin: builtin, load: () => import("./winrm/mod.ts") },
  { manifest: ssm, origin: builtin, load: () => import("./ssm/mod.ts") },
  {
    manifest: local,
    origin: builtin,
    load: () => import("./local/mod.ts"),
    // its PTY is a native addon, which an installation may lack; looked for without loading it
    probe: async () => (await import("./local/mod.ts")).probe(),
  },
  { manifest: container, origin: builtin, load: () => import("./container/mod.ts") },
  { manifest: k8s, origin: builtin, load: () => import("./k8s/mod.ts") },
];
