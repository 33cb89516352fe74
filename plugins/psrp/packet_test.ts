import { deepStrictEqual as assertEquals, match, throws } from "node:assert/strict";
import { encodePacket, type Packet, PacketParser, parsePacketLine } from "./packet.ts";
import { PsrpError } from "./errors.ts";

const NIL = "00000000-0000-0000-0000-000000000000";
const G = "3f1c0b8e-1111-4222-8333-944455556666";

Deno.test("encodePacket() writes every element exactly as PowerShell does", () => {
  assertEquals(
    encodePacket({ kind: "Data", stream: "Default", guid: NIL, data: new Uint8Array([1, 2, 3]) }),
    `<Data Stream='Default' PSGuid='${NIL}'>AQID</Data>\n`,
  );
  for (const kind of ["DataAck", "Command", "CommandAck", "Close", "CloseAck", "Signal", "SignalAck"] as const) {
    assertEquals(encodePacket({ kind, guid: G.toUpperCase() }), `<${kind} PSGuid='${G}' />\n`);
  }
});

Deno.test("PacketParser reads packets split anywhere across chunks, CRLF or LF", () => {
  const packets: Packet[] = [
    { kind: "Data", stream: "PromptResponse", guid: G, data: new Uint8Array([255, 0]) },
    { kind: "CommandAck", guid: G },
    { kind: "CloseAck", guid: NIL },
  ];
  const text = packets.map(encodePacket).join("").replace(/\n/, "\r\n");
  const bytes = new TextEncoder().encode(text);
  for (const step of [1, 7, bytes.length]) {
    const p = new PacketParser();
    const got: Packet[] = [];
    for (let i = 0; i < bytes.length; i += step) got.push(...p.push(bytes.slice(i, i + step)));
    assertEquals(got, packets);
    assertEquals(p.buffered, 0);
  }
});

Deno.test("parsePacketLine() accepts double quotes and skips blank lines", () => {
  assertEquals(parsePacketLine(`<SignalAck PSGuid="${G}"/>`), { kind: "SignalAck", guid: G });
  assertEquals(parsePacketLine("\r"), undefined);
});

Deno.test("parsePacketLine() refuses what is not one of the eight packets, naming the text", () => {
  throws(() => parsePacketLine("Hello from a profile"), /not a packet: Hello from a profile/);
  throws(() => parsePacketLine(`<Bogus PSGuid='${G}' />`), /unknown packet element Bogus/);
  throws(() => parsePacketLine(`<Data Stream='Other' PSGuid='${G}'>AA==</Data>`), /unknown Stream/);
  throws(() => parsePacketLine(`<Data Stream='Default' PSGuid='${G}'>!!</Data>`), PsrpError);
  throws(() => parsePacketLine(`<Close PSGuid='nope' />`), /no valid PSGuid/);
  throws(() => parsePacketLine(`<Close PSGuid='${G}' Extra='1' />`), /exactly the PSGuid/);
  throws(
    () => parsePacketLine("__NamedPipeError__: Remote transport error: boom"),
    /server error: Remote transport error: boom/,
  );
});

Deno.test("PacketParser bounds a line: an endless line is a protocol error (exit 244), not a growing buffer", () => {
  const p = new PacketParser({ maxLineLength: 100 });
  p.push(new Uint8Array(60).fill(0x41));
  try {
    p.push(new Uint8Array(60).fill(0x41));
    throw new Error("no error");
  } catch (e) {
    if (!(e instanceof PsrpError)) throw e;
    match(e.message, /longer than 100 bytes/);
    assertEquals(e.exitCode, 244);
  }
});
