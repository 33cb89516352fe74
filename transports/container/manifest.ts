import { declareParameters, HOST_SET, SDK_VERSION, type TransportManifest } from "../../plugins/mod.ts";

// Also in the host set, so `remote enter docker://web1 --user nobody` takes them.
const both = { ContainerId: {}, [HOST_SET]: {} } as const;

/** The container transport's parameters, declared once: the manifest publishes them, mod.ts reads them. */
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
    sets: both,
    help: "the engine's socket; default DOCKER_HOST, the docker context, then unix:///var/run/docker.sock",
    valueName: "<unix:///path|tcp://host:port>",
  },
  {
    name: "UserName",
    short: "l",
    aliases: ["user"],
    type: { kind: "string" },
    sets: both,
    help: "user (name, uid, user:group) to run as in the container; default the container's user",
  },
  {
    name: "RunAsAdministrator",
    type: { kind: "switch" },
    sets: both,
    help: "run as root in the container, as Enter-PSSession -RunAsAdministrator does",
  },
  {
    name: "WorkingDirectory",
    flag: "workdir",
    aliases: ["working-directory"],
    type: { kind: "string" },
    sets: both,
    help: "directory in the container to start in; default the container's",
    valueName: "<dir>",
  },
  {
    name: "Environment",
    flag: "env",
    type: { kind: "map" },
    sets: both,
    help: "set an environment variable in the container (repeatable)",
    valueName: "<NAME=value>",
  },
  {
    name: "Privileged",
    type: { kind: "switch" },
    sets: both,
    help: "give the command extended privileges (docker exec --privileged)",
  },
]);

/**
 * The container transport: Enter-PSSession's ContainerId set, a shell or a command in a running container through
 * the Docker Engine API (Docker, or Podman's API service), as `docker exec` does it.
 */
export const manifest: TransportManifest = {
  id: "container",
  sdk: SDK_VERSION,
  version: "0.1.0",
  summary: "A shell or command in a running container (Docker Engine API: Docker, Podman)",
  schemes: ["docker", "podman"],
  capabilities: ["shell", "exec", "pty", "pty-resize", "signals", "via"],
  defaultSet: "ContainerId",
  targetHost: "name",
  targets: {
    option: "Container",
    help: "list the engine's running containers (Id, Name, Image, State) as targets, not sessions",
    parameters: ["DockerHost"],
  },
  parameters: parameters.specs,
};
