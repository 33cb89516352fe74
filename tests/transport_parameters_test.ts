/** The built-in transports read their parameters one way: through the declaration in their manifest. */
import { deepStrictEqual as assertEquals, rejects, throws } from "node:assert/strict";
import type { OpenContext } from "../plugins/mod.ts";
import { UsageError } from "../plugins/mod.ts";
import { containerOptions } from "../transports/container/mod.ts";
import { routeFingerprint } from "../transports/ssh/connection.ts";
import { readParameters } from "../transports/ssm/connection.ts";
import { resolveSettings } from "../transports/winrm/mod.ts";

function context(transport: string, parameters: Record<string, unknown>): OpenContext {
  return {
    target: { transport, host: "h1", display: "h1" },
    parameters,
    signal: AbortSignal.timeout(10_000),
    prompt: { interactive: false, ask: () => Promise.reject(new Error("nobody to ask")) },
    notice: () => {},
  };
}

Deno.test("ssh, winrm, ssm and container refuse a parameter of the wrong type alike, naming it", async () => {
  // before: ssh ignored a port given as text, winrm used it unchecked
  const wrong = (e: unknown) => e instanceof TypeError && e.message === "Port is declared as int but was given string";
  await rejects(routeFingerprint(context("ssh", { Port: "2222" })), wrong);
  throws(() => resolveSettings(context("winrm", { Port: "5986", Credential: "u" })), wrong);
  throws(
    () => readParameters(context("ssm", { Region: 1 })),
    (e) => e instanceof TypeError && e.message === "Region is declared as string but was given number",
  );
  throws(
    () => containerOptions(context("container", { ContainerId: "web1", Privileged: "yes" })),
    (e) => e instanceof TypeError && e.message === "Privileged is declared as switch but was given string",
  );
});

Deno.test("winrm and ssm read a uri given as text, and refuse text that is no URL as a usage error", () => {
  const winrm = resolveSettings(context("winrm", { ConnectionUri: "https://w1:5986/wsman", Credential: "u" }));
  assertEquals(winrm.url.href, "https://w1:5986/wsman");
  const ssm = readParameters(context("ssm", { EndpointUrl: "http://127.0.0.1:9/", Region: "eu-west-1" }));
  assertEquals(ssm.endpointUrl, "http://127.0.0.1:9/");
  for (
    const [transport, parameters, flag] of [
      ["winrm", { ConnectionUri: "not a url", Credential: "u" }, "--connection-uri"],
      ["ssm", { EndpointUrl: "not a url", Region: "eu-west-1" }, "--endpoint-url"],
    ] as const
  ) {
    throws(
      () =>
        transport === "winrm"
          ? resolveSettings(context(transport, parameters))
          : readParameters(context(transport, parameters)),
      (e) => e instanceof UsageError && e.message === `${flag} expects a url with a scheme, got "not a url"`,
    );
  }
});
