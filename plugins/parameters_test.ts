import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { UsageError } from "./errors.ts";
import { declareParameters, parameterKey } from "./parameters.ts";

const parameters = declareParameters([
  { name: "ThrottleLimit", type: { kind: "int", min: 1, max: 10 }, help: "" },
  { name: "SSHTransport", type: { kind: "switch" }, help: "" },
  { name: "EndpointUrl", type: { kind: "uri" }, help: "" },
  { name: "Credential", type: { kind: "credential" }, help: "" },
  { name: "Authentication", type: { kind: "enum", values: ["Basic", "Negotiate"] }, help: "" },
  { name: "KeyFilePath", type: { kind: "list" }, help: "" },
  { name: "Options", type: { kind: "map" }, help: "" },
  { name: "IdleTimeout", type: { kind: "duration" }, help: "" },
  { name: "Token", type: { kind: "string" }, secret: true, help: "" },
]);

Deno.test("parameterKey() camel-cases a PowerShell name, lowering a leading acronym whole", () => {
  const cases = [
    ["ThrottleLimit", "throttleLimit"],
    ["SSHTransport", "sshTransport"],
    ["UseSSL", "useSSL"],
    ["SkipCACheck", "skipCACheck"],
    ["Id", "id"],
    ["ID", "id"],
    ["HTTPProxy", "httpProxy"],
  ];
  for (const [name, key] of cases) assertEquals(parameterKey(name), key, name);
});

Deno.test("declareParameters() reads bound values typed, under camel-case keys, and leaves others out", () => {
  const url = new URL("https://h:5986/wsman");
  const read = parameters.read({
    ThrottleLimit: 4,
    SSHTransport: true,
    EndpointUrl: url,
    Credential: { user: "CORP\\admin", password: "pw" },
    KeyFilePath: ["/k"],
    Options: { Port: "22" },
    IdleTimeout: 60_000,
    Unknown: "x",
    Token: null,
  });
  const throttle: number | undefined = read.throttleLimit;
  const auth: "Basic" | "Negotiate" | undefined = read.authentication;
  assertEquals([throttle, auth], [4, undefined]);
  assertEquals(read, {
    throttleLimit: 4,
    sshTransport: true,
    endpointUrl: url,
    credential: { user: "CORP\\admin", password: "pw" },
    keyFilePath: ["/k"],
    options: { Port: "22" },
    idleTimeout: 60_000,
  });
});

Deno.test("declareParameters() reads the forms values travel in: a uri's text, a bare user, another case", () => {
  const read = parameters.read({ EndpointUrl: "https://h/x", Credential: "admin", Authentication: "basic" });
  assertEquals(read, { endpointUrl: new URL("https://h/x"), credential: { user: "admin" }, authentication: "Basic" });
});

Deno.test("declareParameters() refuses a value that breaks its declaration as a usage error naming the option", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ThrottleLimit: 11 }, '--throttle-limit expects an integer from 1 to 10, got "11"'],
    [{ EndpointUrl: "not a url" }, '--endpoint-url expects a url with a scheme, got "not a url"'],
    [{ Authentication: "Kerberos" }, '--authentication expects one of Basic, Negotiate, got "Kerberos"'],
    [{ Token: 5 }, ""],
  ];
  for (const [values, message] of cases) {
    if (message === "") {
      throws(
        () => parameters.read(values),
        (e) => e instanceof TypeError && e.message === "Token is declared as string but was given number",
      );
      continue;
    }
    throws(() => parameters.read(values), (e) => e instanceof UsageError && e.message === message, message);
  }
});

Deno.test("declareParameters() refuses two parameters read under one key", () => {
  throws(
    () =>
      declareParameters([
        { name: "UseSSL", type: { kind: "switch" }, help: "" },
        { name: "useSSL", type: { kind: "switch" }, help: "" },
      ]),
    /parameters UseSSL and useSSL are both read as useSSL/,
  );
});
