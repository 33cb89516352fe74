import { deepStrictEqual as assertEquals, notDeepStrictEqual as assertNotEquals, throws } from "node:assert/strict";
import {
  connectionKey,
  DEFAULT_IDLE_MS,
  encodeFrame,
  Frame,
  FrameDecoder,
  framePayloadJson,
  idleMsFrom,
  masterEnvironment,
  masterSocketPath,
  selectSendEnv,
} from "./reuse_protocol.ts";

Deno.test("FrameDecoder.push() rebuilds frames split at any byte", () => {
  const bytes = new Uint8Array([
    ...encodeFrame(Frame.M_STDOUT, new Uint8Array([1, 2, 3])),
    ...encodeFrame(Frame.M_EXIT, { kind: "exited", code: 3 }),
    ...encodeFrame(Frame.M_OPENED),
  ]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new FrameDecoder();
    const frames = [...d.push(bytes.slice(0, cut)), ...d.push(bytes.slice(cut))];
    assertEquals(frames.map((f) => f.type), [Frame.M_STDOUT, Frame.M_EXIT, Frame.M_OPENED]);
    assertEquals([...frames[0].payload], [1, 2, 3]);
    assertEquals(framePayloadJson(frames[1].payload), { kind: "exited", code: 3 });
  }
});

Deno.test("FrameDecoder.push() rejects an oversized frame", () => {
  throws(() => new FrameDecoder().push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1])), /bad frame length/);
});

Deno.test("connectionKey() differs for another user, port or key, not for parameter order", () => {
  const base = {
    target: { transport: "ssh", host: "db1", port: 22, user: "ann", display: "db1" },
    parameters: { KeyFilePath: ["/k1"], ConfigFile: "/c" },
  };
  assertEquals(connectionKey(base), connectionKey({ ...base, parameters: { ConfigFile: "/c", KeyFilePath: ["/k1"] } }));
  assertNotEquals(connectionKey(base), connectionKey({ ...base, target: { ...base.target, user: "bob" } }));
  assertNotEquals(connectionKey(base), connectionKey({ ...base, target: { ...base.target, port: 2222 } }));
  assertNotEquals(
    connectionKey(base),
    connectionKey({ ...base, parameters: { ...base.parameters, KeyFilePath: ["/k2"] } }),
  );
});

Deno.test("idleMsFrom() reads ControlPersist, then REMOTE_SSH_PERSIST, else 60 s", () => {
  const env = (v?: string) => ({ get: (n: string) => n === "REMOTE_SSH_PERSIST" ? v : undefined }) as typeof Deno.env;
  assertEquals(idleMsFrom(undefined, env()), DEFAULT_IDLE_MS);
  assertEquals(idleMsFrom({ controlpersist: "5m" }, env("1")), 300_000);
  assertEquals(idleMsFrom({ ControlPersist: "no" }, env()), 0);
  assertEquals(idleMsFrom(undefined, env("2")), 2000);
  assertEquals(idleMsFrom(undefined, env("yes")), 0x7fffffff);
});

Deno.test("idleMsFrom() reads ControlPersist in ssh's time format, as ConnectTimeout is read", () => {
  const env = { get: () => undefined } as unknown as typeof Deno.env;
  assertEquals(idleMsFrom({ ControlPersist: "1m30s" }, env), 90_000);
  assertEquals(idleMsFrom({ ControlPersist: "1H" }, env), 3_600_000);
  assertEquals(idleMsFrom({ ControlPersist: "4w" }, env), 0x7fffffff);
  assertEquals(idleMsFrom({ ControlPersist: "5x" }, env), DEFAULT_IDLE_MS);
});

Deno.test("masterSocketPath() lives in XDG_RUNTIME_DIR/remote and depends on HOME and the agent", async () => {
  const env = (vars: Record<string, string>) => ({ get: (n: string) => vars[n] });
  const a = await masterSocketPath(env({ XDG_RUNTIME_DIR: "/run/user/7", HOME: "/home/a" }));
  assertEquals(a.startsWith("/run/user/7/remote/ssh-"), true);
  assertNotEquals(a, await masterSocketPath(env({ XDG_RUNTIME_DIR: "/run/user/7", HOME: "/home/b" })));
  assertNotEquals(
    a,
    await masterSocketPath(env({ XDG_RUNTIME_DIR: "/run/user/7", HOME: "/home/a", SSH_AUTH_SOCK: "/s" })),
  );
  assertEquals(
    (await masterSocketPath(env({ HOME: "/h", TMPDIR: "/t" }))).startsWith(`/t/remote-${Deno.uid()}/`),
    true,
  );
});

Deno.test("masterEnvironment() keeps identity, agent, directories and locale, never secrets", () => {
  const env = masterEnvironment({
    HOME: "/home/me",
    USER: "me",
    SSH_AUTH_SOCK: "/run/agent",
    XDG_RUNTIME_DIR: "/run/user/1",
    LANG: "C.UTF-8",
    LC_CTYPE: "C.UTF-8",
    TERM: "xterm",
    REMOTE_WINRM_PASSWORD: "pw",
    AWS_SECRET_ACCESS_KEY: "key",
    GITHUB_TOKEN: "t",
  });
  assertEquals(env, {
    HOME: "/home/me",
    USER: "me",
    SSH_AUTH_SOCK: "/run/agent",
    XDG_RUNTIME_DIR: "/run/user/1",
    LANG: "C.UTF-8",
    LC_CTYPE: "C.UTF-8",
    TERM: "xterm",
  });
});

Deno.test("selectSendEnv() picks the variables SendEnv patterns name, as ssh_config matches them", () => {
  const env = { LC_ALL: "C", LANG: "en", LC: "x", AWS_SECRET_ACCESS_KEY: "k", A1: "1", A22: "2" };
  assertEquals(selectSendEnv(["LC_*", "A?"], env), { LC_ALL: "C", A1: "1" });
  assertEquals(selectSendEnv([], env), {});
  assertEquals(selectSendEnv(["*"], env), env);
});
