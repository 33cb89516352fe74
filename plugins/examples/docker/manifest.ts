import { declareParameters, SDK_VERSION, type TransportManifest } from "../../mod.ts";

/** The plugin's parameters, declared once: the manifest publishes them, mod.ts reads them typed. */
export const parameters = declareParameters([
  {
    name: "ContainerId",
    type: { kind: "string" },
    sets: { ContainerId: { position: 0, mandatory: true } },
    help: "the container's ID or name, as `docker ps` shows it",
    valueName: "<container>",
  },
  {
    name: "DockerHost",
    type: { kind: "string" },
    sets: { ContainerId: {} },
    help: "the engine's socket as unix:///path; defaults to DOCKER_HOST, then unix:///var/run/docker.sock",
    valueName: "<unix:///path>",
  },
]);

/**
 * The docker example plugin: a shell or a command inside a running container, through the Docker
 * Engine API on its unix socket, like `docker exec` and Enter-PSSession's ContainerId set.
 */
export const manifest: TransportManifest = {
  id: "docker",
  sdk: SDK_VERSION,
  version: "0.1.0",
  summary: "A shell or command in a running container via the Docker Engine API (example plugin)",
  capabilities: ["shell", "exec", "pty", "pty-resize", "signals"],
  parameters: parameters.specs,
  defaultSet: "ContainerId",
};
