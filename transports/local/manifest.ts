import { SDK_VERSION, type TransportManifest } from "../../plugins/mod.ts";

/** The local transport: a shell on this machine in a PTY, Enter-PSSession's loopback example. */
export const manifest: TransportManifest = {
  id: "local",
  sdk: SDK_VERSION,
  version: "0.1.0",
  summary: "A shell on this machine in a pseudo-terminal (the reference plugin)",
  capabilities: ["shell", "exec", "pty", "pty-resize", "signals", "psrp"],
  parameters: [],
};
