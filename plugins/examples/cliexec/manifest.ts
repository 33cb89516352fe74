import { declareParameters, HOST_SET, SDK_VERSION, type TransportManifest } from "../../mod.ts";

/** The kubectl command line the plugin runs unless `--exec-cli` names another (see command_line.ts). */
export const DEFAULT_EXEC_CLI = "kubectl exec -i {tty} --namespace={namespace} --container={container} {instance} --";

// Each option is in both sets: the plugin's own (`--instance web1`) and the one of a `cliexec://web1` target.
const both = { Instance: {}, [HOST_SET]: {} } as const;

/** The plugin's parameters, declared once: the manifest publishes them, mod.ts reads them back typed. */
export const parameters = declareParameters([
  {
    name: "Instance", // the key in ctx.parameters; the flag is its kebab case, --instance
    type: { kind: "string" },
    // position 0 and mandatory: `remote enter --instance web1`, or just the target in `cliexec://web1`
    sets: { Instance: { position: 0, mandatory: true } },
    help: "the pod, container or instance to run in, as the CLI names it",
    valueName: "<name>",
  },
  {
    name: "ExecCli",
    flag: "exec-cli",
    type: { kind: "string" },
    sets: both,
    help: "the CLI's words before the command, with {instance} {tty} {namespace} {container} {user} filled in",
    default: DEFAULT_EXEC_CLI,
    valueName: "<command line>",
  },
  {
    name: "Namespace",
    type: { kind: "string" },
    sets: both,
    help: "fills {namespace}: kubectl's namespace; default the context's",
    valueName: "<namespace>",
  },
  {
    name: "Container",
    type: { kind: "string" },
    sets: both,
    help: "fills {container}: the container in the pod; default the pod's first",
    valueName: "<container>",
  },
]);

/**
 * The cliexec example plugin: a shell or a command in a pod, container or instance, through whatever local CLI
 * reaches it (`kubectl exec`, `incus exec`, `docker exec`, `podman exec`). Pure data, so `remote plugin list`
 * shows it without loading mod.ts.
 */
export const manifest: TransportManifest = {
  id: "cliexec", // also the URL scheme: cliexec://web1
  sdk: SDK_VERSION, // remote refuses any other contract version
  version: "0.1.0",
  summary: "A shell or command through a local CLI such as kubectl exec (example plugin)",
  capabilities: ["shell", "exec", "pty", "pty-resize", "signals"],
  parameters: parameters.specs,
  defaultSet: "Instance",
  unsupportedReasons: {
    disconnect: "a CLI's exec session ends with the CLI; use ssh with tmux for sessions that outlive a connection",
  },
};
