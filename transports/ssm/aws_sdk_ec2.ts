/**
 * AWS's EC2 client, for `--target` by Name tag only: imported lazily (`await import("./aws_sdk_ec2.ts")`)
 * on the first lookup; scripts/bundle.ts embeds it as a separate module evaluated on first use.
 *
 * @module
 */
export { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
