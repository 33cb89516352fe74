import { declareParameters, HOST_SET, SDK_VERSION, type TransportManifest } from "../../plugins/mod.ts";

// Also in the host set, so `remote enter ssm://i-0abc --region eu-west-1` takes them.
const target = { Target: {}, [HOST_SET]: {} } as const;

/** The SSM transport's parameters, declared once: the manifest publishes them, connection.ts reads them. */
export const parameters = declareParameters([
  {
    name: "Target",
    type: { kind: "string" },
    sets: { Target: { position: 0, mandatory: true } },
    help: "instance ID (i-…), managed-node ID (mi-…) or Name tag (looked up in EC2 and SSM)",
  },
  { name: "DocumentName", type: { kind: "string" }, sets: target, help: "Session Manager document to run" },
  {
    name: "Parameter",
    type: { kind: "map" },
    sets: target,
    help: "document parameter key=value (repeatable)",
    valueName: "<key=value>",
  },
  { name: "Reason", type: { kind: "string" }, sets: target, help: "reason recorded with the session" },
  {
    name: "ProfileName",
    aliases: ["profile"],
    type: { kind: "string" },
    sets: target,
    help: "AWS profile (else AWS_PROFILE)",
  },
  { name: "Region", type: { kind: "string" }, sets: target, help: "AWS region" },
  {
    name: "EndpointUrl",
    type: { kind: "uri" },
    sets: target,
    help: "SSM endpoint URL (else AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL)",
  },
]);

/** The SSM transport: Start-SSMSession's parameters, without the AWS CLI or session-manager-plugin. */
export const manifest: TransportManifest = {
  id: "ssm",
  sdk: SDK_VERSION,
  version: "0.1.0",
  summary:
    "AWS Systems Manager Session Manager (WebSocket data channel): shells, commands, kept sessions, forwarding, --via",
  capabilities: ["shell", "exec", "pty", "pty-resize", "disconnect", "list", "receive", "remove", "forward", "dial"],
  defaultSet: "Target",
  parameters: parameters.specs,
};
