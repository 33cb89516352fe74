import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import {
  buildEnvelope,
  checkRelatesTo,
  CONFIG_RESOURCE,
  MAX_DEPTH,
  MAX_ELEMENTS,
  NS,
  parseConfigMaxEnvelope,
  parseEnvelope,
  parseFault,
  parsePsrpReceiveResponse,
  parseReceiveResponse,
  psrpShellBody,
  robustHeaders,
  toBase64,
  WsmanXmlError,
} from "./wsman_xml.ts";

// a w:TimedOut fault as recorded in masterzen/winrm fixture_test.go (operationTimeoutResponse), prefixes renamed
const TIMED_OUT =
  `<?xml version="1.0"?><env:Envelope xml:lang="en-US" xmlns:env="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:man="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
<env:Header><wsa:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</wsa:Action>
<wsa:RelatesTo>uuid:ABC</wsa:RelatesTo></env:Header><env:Body><env:Fault><env:Code><env:Value>env:Receiver</env:Value>
<env:Subcode><env:Value>man:TimedOut</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en-US">The
 WS-Management service cannot complete the operation within the time specified in OperationTimeout.</env:Text></env:Reason>
<env:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793"
 Machine="win01"><f:Message>The WS-Management service cannot complete the operation.</f:Message></f:WSManFault>
</env:Detail></env:Fault></env:Body></env:Envelope>`;

Deno.test("parseFault() reads the WSManFault code whatever the prefixes", () => {
  const f = parseFault(parseEnvelope(TIMED_OUT));
  assertEquals(f, {
    subcode: "man:TimedOut",
    code: 2150858793,
    machine: "win01",
    message: "The WS-Management service cannot complete the operation.",
  });
});

// the shell quota fault as WinRb/WinRM spec/stubs/responses/wmi_error_v2.xml records it (shortened): no
// RelatesTo, no WSManFault, an MSFT_WmiError in s:Detail
const QUOTA = `<s:Envelope xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
<s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code>
<s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:QuotaLimit</s:Value></s:Subcode></s:Code><s:Reason>
<s:Text xml:lang="en-US">The maximum number of concurrent shells for this user has been exceeded. </s:Text></s:Reason>
<s:Detail><p:MSFT_WmiError xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError">
<p:CIMStatusCode>27</p:CIMStatusCode><p:Message>This user is allowed a maximum number of 30 concurrent shells, which
 has been exceeded. </p:Message><p:error_Code>2150859173</p:error_Code></p:MSFT_WmiError></s:Detail></s:Fault>
</s:Body></s:Envelope>`;

Deno.test("parseFault() reads an MSFT_WmiError detail as pywinrm does", () => {
  assertEquals(parseFault(parseEnvelope(QUOTA)), {
    subcode: "w:QuotaLimit",
    code: 2150859173,
    source: "MSFT_WmiError",
    message: "This user is allowed a maximum number of 30 concurrent shells, which has been exceeded.",
  });
});

Deno.test("parseEnvelope() resolves namespaces instead of trusting prefixes", () => {
  const fake = TIMED_OUT.replace('xmlns:env="http://www.w3.org/2003/05/soap-envelope"', 'xmlns:env="urn:other"');
  throws(() => parseEnvelope(fake), /not a SOAP envelope/);
  throws(() => parseEnvelope("<s:Envelope/>"), /undeclared namespace prefix s/);
});

Deno.test("parseEnvelope() refuses DOCTYPE, entities and broken XML", () => {
  throws(() => parseEnvelope(`<!DOCTYPE x [<!ENTITY a "b">]>${TIMED_OUT}`), WsmanXmlError);
  throws(() => parseEnvelope(`<?xml version="1.0"?><!doctype x>`), /DOCTYPE/);
  throws(() => parseEnvelope(TIMED_OUT.slice(0, 300)), /not well-formed/);
  throws(() => parseEnvelope(""), /empty/);
});

Deno.test("checkRelatesTo() compares with the MessageID sent", () => {
  const env = parseEnvelope(TIMED_OUT);
  checkRelatesTo(env, "uuid:abc");
  throws(() => checkRelatesTo(env, "uuid:DEF"), /relates to uuid:ABC/);
});

Deno.test("parseReceiveResponse() collects streams, End and the exit code", () => {
  const rsp = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
  const xml = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="${rsp}"><s:Body>` +
    `<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">${toBase64(new TextEncoder().encode("hi"))}` +
    `</rsp:Stream><rsp:Stream Name="stderr" CommandId="C1" End="true"></rsp:Stream>` +
    `<rsp:CommandState CommandId="C1" State="${rsp}/CommandState/Done"><rsp:ExitCode>3</rsp:ExitCode>` +
    `</rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>`;
  const r = parseReceiveResponse(parseEnvelope(xml), "c1");
  assertEquals(r.done, true);
  assertEquals(r.exitCode, 3);
  assertEquals(r.chunks.map((c) => [c.name, new TextDecoder().decode(c.data), c.end]), [
    ["stdout", "hi", false],
    ["stderr", "", true],
  ]);
});

Deno.test("buildEnvelope() escapes selector values", () => {
  const xml = buildEnvelope({
    action: "a",
    to: "http://h:5985/wsman",
    messageId: "uuid:1",
    sessionId: "uuid:2",
    operationTimeout: "PT20S",
    selectors: { ShellId: `<"&>` },
    body: "",
  });
  assertEquals(xml.includes(`<w:Selector Name="ShellId">&lt;&quot;&amp;&gt;</w:Selector>`), true);
  parseEnvelope(xml);
});

Deno.test("parseEnvelope() refuses too many or too deeply nested elements before parsing them", () => {
  const open = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>`;
  const close = `</s:Body></s:Envelope>`;
  throws(() => parseEnvelope(open + "<a/>".repeat(MAX_ELEMENTS) + close), /more than 10000 elements; refused/);
  throws(
    () => parseEnvelope(open + "<a>".repeat(MAX_DEPTH) + "</a>".repeat(MAX_DEPTH) + close),
    /nests elements deeper than 32; refused/,
  );
  // a '/>' or '>' inside a quoted attribute value neither closes nor hides a start tag
  throws(
    () => parseEnvelope(open + `<a x="/>">`.repeat(MAX_DEPTH) + "</a>".repeat(MAX_DEPTH) + close),
    /nests elements deeper than 32/,
  );
  // markup in comments and CDATA is not counted
  const fine = open + `<!-- ${"<a>".repeat(100)} --><a><![CDATA[${"<b>".repeat(MAX_ELEMENTS)}]]></a>` +
    "<a/>".repeat(MAX_ELEMENTS - 10) + close;
  assertEquals(parseEnvelope(fine).children[0].children.length, MAX_ELEMENTS - 9);
});

Deno.test("parseConfigMaxEnvelope() reads MaxEnvelopeSizekb in bytes, or nothing", () => {
  const reply = (inner: string) =>
    parseEnvelope(
      `<s:Envelope xmlns:s="${NS.s}"><s:Body><cfg:Config xmlns:cfg="${CONFIG_RESOURCE}">${inner}</cfg:Config>` +
        `</s:Body></s:Envelope>`,
    );
  assertEquals(parseConfigMaxEnvelope(reply("<cfg:MaxEnvelopeSizekb>500</cfg:MaxEnvelopeSizekb>")), 512_000);
  assertEquals(parseConfigMaxEnvelope(reply("<cfg:MaxEnvelopeSizekb>lots</cfg:MaxEnvelopeSizekb>")), undefined);
  assertEquals(parseConfigMaxEnvelope(reply("")), undefined);
});

Deno.test("buildEnvelope() marks a MustComply option and the OptionSet mustUnderstand, as PowerShell's Create needs", () => {
  const xml = buildEnvelope({
    action: "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
    to: "http://win01:5985/wsman",
    messageId: "uuid:1",
    sessionId: "uuid:2",
    resourceUri: "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
    operationTimeout: "PT20S",
    options: { protocolversion: { value: "2.3", mustComply: true } },
    body: psrpShellBody("B2DDE5BA-F22F-4493-9B8E-8B565073F563", new Uint8Array([1, 2, 3])),
  });
  const header = parseEnvelope(xml).children[0];
  const optionSet = header.children.find((c) => c.name === "OptionSet")!;
  assertEquals(optionSet.attrs.mustUnderstand, "true");
  assertEquals(optionSet.children.map((o) => [o.attrs.Name, o.attrs.MustComply, o.text]), [
    ["protocolversion", "true", "2.3"],
  ]);
  assertEquals(
    header.children.find((c) => c.name === "ResourceURI")?.text,
    "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
  );
  const shell = parseEnvelope(xml).children[1].children[0];
  assertEquals(shell.attrs.ShellId, "B2DDE5BA-F22F-4493-9B8E-8B565073F563");
  const creation = shell.children.find((c) => c.name === "creationXml")!;
  assertEquals([creation.ns, creation.text], ["http://schemas.microsoft.com/powershell", "AQID"]);
});

Deno.test("parsePsrpReceiveResponse() takes stdout of the command asked for and refuses another command's", () => {
  const reply = (streams: string) =>
    parseEnvelope(
      `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">` +
        `<s:Body><rsp:ReceiveResponse>${streams}</rsp:ReceiveResponse></s:Body></s:Envelope>`,
    );
  const done = reply(
    `<rsp:Stream Name="stdout" CommandId="AB">AQI=</rsp:Stream><rsp:Stream Name="stdout" CommandId="AB">Aw==</rsp:Stream>` +
      `<rsp:CommandState CommandId="AB" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done">` +
      `<rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>`,
  );
  assertEquals(parsePsrpReceiveResponse(done, "ab"), {
    data: [new Uint8Array([1, 2]), new Uint8Array([3])],
    done: true,
  });
  assertEquals(parsePsrpReceiveResponse(reply(`<rsp:Stream Name="stdout">AQI=</rsp:Stream>`), undefined), {
    data: [new Uint8Array([1, 2])],
    done: false,
  });
  throws(() => parsePsrpReceiveResponse(done, undefined), WsmanXmlError);
  throws(() => parsePsrpReceiveResponse(done, "CD"), WsmanXmlError);
});

Deno.test("buildEnvelope() marks a robust operation with wsmv:OperationID and SequenceId 1, a retransmission with mustUnderstand", () => {
  const base = {
    action: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
    to: "http://win01:5985/wsman",
    messageId: "uuid:1",
    sessionId: "uuid:2",
    operationTimeout: "PT20S",
    body: "",
  };
  const header = (xml: string) => parseEnvelope(xml).children.find((c) => c.name === "Header")!;
  const show = (xml: string) =>
    header(xml).children.filter((c) => c.ns === NS.p && /^(OperationID|SequenceId)$/.test(c.name))
      .map((c) => `${c.name}[${c.attrs.mustUnderstand}]=${c.text}`);
  assertEquals(show(buildEnvelope(base)), []);
  assertEquals(show(buildEnvelope({ ...base, operation: { id: "uuid:OP", retransmit: false } })), [
    "OperationID[false]=uuid:OP",
    "SequenceId[false]=1",
  ]);
  assertEquals(
    show(buildEnvelope({ ...base, operation: { id: "uuid:OP", retransmit: true } }))[0],
    "OperationID[true]=uuid:OP",
  );
});

Deno.test("robustHeaders() reads OperationID and SequenceID in either spelling and tells control messages apart", () => {
  const env = (action: string, headers: string) =>
    parseEnvelope(
      `<s:Envelope xmlns:s="${NS.s}" xmlns:a="${NS.a}" xmlns:p="${NS.p}"><s:Header><a:Action>${action}</a:Action>` +
        `${headers}</s:Header><s:Body/></s:Envelope>`,
    );
  const receive = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse";
  assertEquals(robustHeaders(env(receive, "")), { operationId: undefined, sequenceId: undefined, control: false });
  assertEquals(
    robustHeaders(env(receive, "<p:OperationID>uuid:A</p:OperationID><p:SequenceID>2</p:SequenceID>")),
    { operationId: "uuid:A", sequenceId: 2, control: false },
  );
  assertEquals(
    robustHeaders(env(receive, "<p:OperationId>uuid:A</p:OperationId><p:SequenceId>1</p:SequenceId>")).sequenceId,
    1,
  );
  assertEquals(robustHeaders(env("http://schemas.microsoft.com/wbem/wsman/1/wsman/Acknowledge", "")).control, true);
  assertEquals(robustHeaders(env("http://schemas.microsoft.com/wbem/wsman/1/wsman/KeepAlive", "")).control, true);
});
