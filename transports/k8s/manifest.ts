import { declareParameters, HOST_SET, SDK_VERSION, type TransportManifest } from "../../plugins/mod.ts";

/** The Kubernetes transport's parameters, declared once: the manifest publishes them, mod.ts reads them. */
export const parameters = declareParameters([
  {
    name: "KubeContext",
    flag: "context",
    type: { kind: "string" },
    sets: { [HOST_SET]: {} },
    help: "the kubeconfig context to use; default its current-context",
    valueName: "<context>",
  },
]);

/**
 * The Kubernetes transport: a shell or command in a pod's container through the API server's exec subresource,
 * as `kubectl exec` does it (WebSocket, v5.channel.k8s.io then v4.channel.k8s.io).
 */
export const manifest: TransportManifest = {
  id: "k8s",
  sdk: SDK_VERSION,
  version: "0.1.0",
  summary: "A shell or command in a Kubernetes pod (k8s://namespace/pod[/container], the API server's exec)",
  schemes: ["kubernetes"],
  capabilities: ["shell", "exec", "pty", "pty-resize"],
  targetHost: "name",
  parameters: parameters.specs,
};
