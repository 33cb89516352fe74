/**
 * The parts of AWS's SDK for JavaScript v3 the ssm transport uses, in one module that is imported
 * lazily (`await import("./aws_sdk.ts")`) on the first SSM call. `deno bundle` keeps it out of the main
 * bundle's parse: scripts/bundle.ts embeds it as a separate module evaluated on first use.
 *
 * @module
 */
export { fromEnv, fromNodeProviderChain } from "@aws-sdk/credential-providers";
// KMS for encrypted sessions: here rather than in a module of its own, where the bundle would carry a second
// copy of the SDK's core (measured: +6.7 KB here, +183 KB apart)
export { DecryptCommand, GenerateDataKeyCommand, KMSClient } from "@aws-sdk/client-kms";
export { loadSharedConfigFiles } from "@smithy/shared-ini-file-loader";
export {
  DescribeInstanceInformationCommand,
  DescribeSessionsCommand,
  ResumeSessionCommand,
  SSMClient,
  StartSessionCommand,
  TerminateSessionCommand,
} from "@aws-sdk/client-ssm";
