import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { deserialize, PLAIN_SESSION_KEY, type PSObject, type PSSecureString, serialize } from "./clixml.ts";
import { decodeHostCall, dispatchHostCall, type HostCall, hostInfoObject, hostResponseObject } from "./host.ts";
import { readErrorRecord } from "./records.ts";

const call = (methodId: number, args: unknown[] = [], callId = 1n): HostCall => ({
  callId,
  methodId,
  method: undefined,
  args: args as never,
});

Deno.test("decodeHostCall() reads ci, mi and mp as PowerShell sends them", () => {
  const c = decodeHostCall(
    deserialize(
      `<Obj RefId="0"><MS><I64 N="ci">-100</I64><Obj N="mi" RefId="1"><TN RefId="0"><T>System.Management.Automation.Remoting.RemoteHostMethodId</T></TN><ToString>WriteLine2</ToString><I32>16</I32></Obj><Obj N="mp" RefId="2"><TN RefId="1"><T>System.Collections.ArrayList</T></TN><LST><S>hello</S></LST></Obj></MS></Obj>`,
    ),
    "pid",
  );
  assertEquals(c, { callId: -100n, methodId: 16, method: "WriteLine2", args: ["hello"], pipelineId: "pid" });
});

Deno.test("dispatchHostCall() runs Write* on the host and sends no response for void calls", async () => {
  const seen: unknown[] = [];
  const host = {
    write: (t: string, fg?: number, bg?: number) => void seen.push(["write", t, fg, bg]),
    writeLine: (t: string) => void seen.push(["line", t]),
    writeErrorLine: (t: string) => void seen.push(["error", t]),
    writeWarningLine: (t: string) => void seen.push(["warning", t]),
    setShouldExit: (code: number) => void seen.push(["exit", code]),
  };
  for (
    const [id, args] of [[13, ["a"]], [14, [1, 2, "b"]], [15, []], [16, ["c"]], [18, ["e"]], [22, ["w"]], [6, [
      3,
    ]]] as const
  ) {
    assertEquals(await dispatchHostCall(host, call(id, [...args], -100n), PLAIN_SESSION_KEY), undefined);
  }
  assertEquals(seen, [
    ["write", "a", undefined, undefined],
    ["write", "b", 1, 2],
    ["line", ""],
    ["line", "c"],
    ["error", "e"],
    ["warning", "w"],
    ["exit", 3],
  ]);
});

Deno.test("dispatchHostCall() encodes answers in the types the server expects", async () => {
  const host = {
    readLine: () => "line",
    readLineAsSecureString: () => "pw",
    promptForChoice: () => 1,
    prompt: () => ({ Name: "v" }),
    promptForCredential: () => ({ userName: "u", password: "p" }),
    rawUI: { bufferSize: { width: 90, height: 30 }, windowTitle: "t" },
  };
  const v = async (id: number, args: unknown[] = []) => {
    const a = await dispatchHostCall(host, call(id, args), PLAIN_SESSION_KEY);
    ok(a && "value" in a);
    return a.value;
  };
  assertEquals(await v(11), "line");
  assertEquals(await (await v(12) as PSSecureString).decrypt(PLAIN_SESSION_KEY), "pw");
  assertEquals(await v(26, ["c", "m", [], 0]), 1);
  assertEquals([...(await v(23, ["c", "m", []]) as Map<unknown, unknown>)], [["Name", "v"]]);
  const cred = await v(25, ["c", "m", "u", "t", 3, 1]) as PSObject;
  assertEquals([cred.typeNames[0], cred.get("UserName")], ["System.Management.Automation.PSCredential", "u"]);
  ok(serialize(cred).includes('<SS N="Password">cAA=</SS>'));
  assertEquals([(await v(37) as PSObject).get("width"), await v(41)], [90, "t"]);
});

Deno.test("dispatchHostCall() answers a method the host lacks, or a throw, with an ErrorRecord", async () => {
  const missing = await dispatchHostCall({}, call(11), PLAIN_SESSION_KEY);
  ok(missing && "error" in missing);
  match(readErrorRecord(missing.error).message, /does not implement method 11/);
  const thrown = await dispatchHostCall(
    { readLine: () => Promise.reject(new Error("no terminal")) },
    call(11),
    PLAIN_SESSION_KEY,
  );
  ok(thrown && "error" in thrown);
  assertEquals(readErrorRecord(thrown.error).message, "no terminal");
  const response = serialize(hostResponseObject({ ...call(11), method: "ReadLine" }, thrown));
  ok(response.includes('<I64 N="ci">1</I64>') && response.includes('N="me"'), response);
});

Deno.test("hostInfoObject() sends the raw UI as _hostDefaultData keyed 0–9", () => {
  const info = hostInfoObject({ rawUI: { bufferSize: { width: 132, height: 40 }, foregroundColor: 15 } });
  assertEquals([
    info.get("_isHostNull"),
    info.get("_isHostUINull"),
    info.get("_isHostRawUINull"),
    info.get("_useRunspaceHost"),
  ], [
    false,
    false,
    false,
    false,
  ]);
  const data = (info.get("_hostDefaultData") as PSObject).get("data") as Map<unknown, PSObject>;
  assertEquals([...data.keys()], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals([data.get(0)!.get("V"), (data.get(5)!.get("V") as PSObject).get("width")], [15, 132]);
  assertEquals(data.get(5)!.get("T"), "System.Management.Automation.Host.Size");
  assertEquals(hostInfoObject(undefined).get("_useRunspaceHost"), true);
});

Deno.test("dispatchHostCall() reads an array argument sent as elements and lengths (mae, mal), as RemoteHostEncoder does", async () => {
  const defaults = deserialize(
    `<Obj RefId="0"><MS><Obj N="mae" RefId="1"><TN RefId="0"><T>System.Collections.ArrayList</T><T>System.Object</T></TN><LST><I32>0</I32><I32>2</I32></LST></Obj><Obj N="mal" RefId="2"><TN RefId="1"><T>System.Int32[]</T><T>System.Array</T><T>System.Object</T></TN><LST><I32>2</I32></LST></Obj></MS></Obj>`,
  );
  let seen: number[] = [];
  const host = {
    promptForChoiceMultipleSelection: (_c: string, _m: string, _ch: unknown[], d: number[]) => (seen = d, [1]),
  };
  await dispatchHostCall(host, call(56, ["", "", [], defaults]), PLAIN_SESSION_KEY);
  assertEquals(seen, [0, 2]);
});

Deno.test("dispatchHostCall() passes the raw UI setters: cursor position, cursor size, title, filling a rectangle", async () => {
  const seen: unknown[] = [];
  const host = {
    setCursorPosition: (p: unknown) => void seen.push(["cursor", p]),
    setCursorSize: (n: number) => void seen.push(["size", n]),
    setWindowTitle: (t: string) => void seen.push(["title", t]),
    setBufferContents: (r: unknown, c: unknown) => void seen.push(["fill", r, c]),
  };
  const coordinates = deserialize(`<Obj RefId="0"><MS><I32 N="x">2</I32><I32 N="y">3</I32></MS></Obj>`);
  const rectangle = deserialize(
    `<Obj RefId="0"><MS><I32 N="left">-1</I32><I32 N="top">-1</I32><I32 N="right">-1</I32><I32 N="bottom">-1</I32></MS></Obj>`,
  );
  const cell = deserialize(
    `<Obj RefId="0"><MS><C N="character">32</C><I32 N="foregroundColor">7</I32><I32 N="backgroundColor">0</I32></MS></Obj>`,
  );
  for (const [id, args] of [[32, [coordinates]], [36, [0]], [42, ["t"]], [49, [rectangle, cell]]] as const) {
    assertEquals(await dispatchHostCall(host, call(id, [...args], -100n), PLAIN_SESSION_KEY), undefined);
  }
  assertEquals(seen, [
    ["cursor", { x: 2, y: 3 }],
    ["size", 0],
    ["title", "t"],
    ["fill", { left: -1, top: -1, right: -1, bottom: -1 }, { character: " ", foregroundColor: 7, backgroundColor: 0 }],
  ]);
});
