import { strictEqual } from "node:assert/strict";
import { signingKey, signRequest } from "./ssm_sigv4.ts";

// AWS Signature Version 4 test suite (aws-sig-v4-test-suite): get-vanilla, get-vanilla-query-order-key-case,
// post-vanilla; published signatures for AKIDEXAMPLE at 20150830T123600Z, us-east-1, service "service".
const base = {
  headers: {},
  body: "",
  region: "us-east-1",
  service: "service",
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
  date: new Date(Date.UTC(2015, 7, 30, 12, 36, 0)),
};

Deno.test("signRequest() matches the AWS SigV4 test suite", () => {
  const cases: [string, string, string][] = [
    ["GET", "https://example.amazonaws.com/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"],
    [
      "GET",
      "https://example.amazonaws.com/?Param2=value2&Param1=value1",
      "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ],
    ["POST", "https://example.amazonaws.com/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"],
  ];
  for (const [method, url, signature] of cases) {
    const sig = signRequest({ ...base, method, url: new URL(url) });
    strictEqual(sig.signature, signature, `${method} ${url}`);
    strictEqual(sig.signedHeaders, "host;x-amz-date");
  }
});

Deno.test("signingKey() matches the published derived key", () => {
  const key = signingKey(base.credentials.secretAccessKey, "20150830", "us-east-1", "service");
  strictEqual(
    Array.from(key, (b) => b.toString(16).padStart(2, "0")).join(""),
    "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75",
  );
});

Deno.test("signRequest() signs the session token", () => {
  const sig = signRequest({
    ...base,
    method: "POST",
    url: new URL("https://ssm.us-east-1.amazonaws.com/"),
    credentials: { ...base.credentials, sessionToken: "tok" },
  });
  strictEqual(sig.headers["x-amz-security-token"], "tok");
  strictEqual(sig.signedHeaders, "host;x-amz-date;x-amz-security-token");
});
