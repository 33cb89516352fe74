/**
 * AWS Signature Version 4 for request headers, with no I/O: canonical request, string to sign,
 * signing key, Authorization header. Follows the AWS General Reference "Signature Version 4 signing
 * process" and is checked against AWS's published test-suite values (`ssm_sigv4_test.ts`).
 *
 * The emulator verifies every call with it; remote itself signs with AWS's SDK, so a mistake in
 * one is not mirrored by the other.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";

/** A set of AWS credentials. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A request to sign. */
export interface SignInput {
  method: string;
  url: URL;
  /** headers to sign besides `host` and `x-amz-date`, which are added */
  headers: Readonly<Record<string, string>>;
  body: Uint8Array | string;
  region: string;
  service: string;
  credentials: AwsCredentials;
  date: Date;
}

/** The parts of a signature, for tests and for a verifier. */
export interface Signature {
  canonicalRequest: string;
  stringToSign: string;
  signedHeaders: string;
  signature: string;
  authorization: string;
  /** every header to send, `host` and `authorization` included */
  headers: Record<string, string>;
}

/** Lower-case hex SHA-256. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Uint8Array | string, data: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

/** `YYYYMMDDTHHMMSSZ` */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** RFC 3986 unreserved characters stay; everything else is %XX, upper case. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonicalPath(pathname: string): string {
  // URL already percent-encodes; non-S3 services encode each segment once more
  if (pathname === "") return "/";
  return pathname.split("/").map((segment) => uriEncode(decodeURIComponent(segment))).join("/");
}

function canonicalQuery(search: URLSearchParams): string {
  const pairs = [...search.entries()].map(([k, v]) => [uriEncode(k), uriEncode(v)]);
  pairs.sort(([ak, av], [bk, bv]) => ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0);
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

/** The signing key: HMAC chain of date, region, service and `aws4_request`. */
export function signingKey(secretAccessKey: string, dateStamp: string, region: string, service: string): Uint8Array {
  const kDate = hmac(`AWS4${secretAccessKey}`, dateStamp);
  return hmac(hmac(hmac(kDate, region), service), "aws4_request");
}

/**
 * Signs a request and returns the headers to send.
 *
 * @example Signing an SSM call
 * ```ts
 * import { signRequest } from "./sigv4.ts";
 * const sig = signRequest({
 *   method: "POST", url: new URL("https://ssm.us-east-1.amazonaws.com/"),
 *   headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AmazonSSM.StartSession" },
 *   body: "{}", region: "us-east-1", service: "ssm", date: new Date(),
 *   credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
 * });
 * console.assert(sig.headers.authorization.startsWith("AWS4-HMAC-SHA256 "));
 * ```
 */
export function signRequest(input: SignInput): Signature {
  const stamp = amzDate(input.date);
  const dateStamp = stamp.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  headers["host"] = input.url.host;
  headers["x-amz-date"] = stamp;
  if (input.credentials.sessionToken) headers["x-amz-security-token"] = input.credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers[n].trim().replace(/\s+/g, " ")}\n`).join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalPath(input.url.pathname),
    canonicalQuery(input.url.searchParams),
    canonicalHeaders,
    signedHeaders,
    sha256Hex(input.body),
  ].join("\n");
  const scope = `${dateStamp}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, sha256Hex(canonicalRequest)].join("\n");
  const key = signingKey(input.credentials.secretAccessKey, dateStamp, input.region, input.service);
  const signature = Array.from(hmac(key, stringToSign), (b) => b.toString(16).padStart(2, "0")).join("");
  const authorization =
    `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, ` +
    `Signature=${signature}`;
  return {
    canonicalRequest,
    stringToSign,
    signedHeaders,
    signature,
    authorization,
    headers: { ...headers, authorization },
  };
}
