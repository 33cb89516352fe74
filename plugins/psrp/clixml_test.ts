import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import {
  decodeString,
  deserialize,
  deserializeAll,
  encodeString,
  PLAIN_SESSION_KEY,
  psBag,
  psEnum,
  PSObject,
  PSPrimitive,
  PSSecureString,
  type PSValue,
  serialize,
  serializeDocument,
} from "./clixml.ts";
import { PsrpError } from "./errors.ts";

Deno.test("encodeString() escapes controls, surrogates and _x as MS-PSRP §2.2.5.3.2; decodeString() reverses it", () => {
  const s = "a\tb\n\u0000\u007f\u0085_x_X_y\u{1F313}é";
  const e = encodeString(s);
  assertEquals(e, "a_x0009_b_x000A__x0000__x007F__x0085__x005F_x_x005F_X_y_xD83C__xDF13_é");
  assertEquals(decodeString(e), s);
  assertEquals(decodeString("_x0001F313_"), "\u{1F313}");
});

Deno.test("serialize() writes each JavaScript type as its CLIXML element", () => {
  assertEquals(serialize("a<&>"), "<S>a&lt;&amp;&gt;</S>");
  assertEquals(serialize(""), "<S />");
  assertEquals(serialize(true), "<B>true</B>");
  assertEquals(serialize(7), "<I32>7</I32>");
  assertEquals(serialize(2 ** 31), "<Db>2147483648</Db>");
  assertEquals(serialize(0.5), "<Db>0.5</Db>");
  assertEquals(serialize(1e300), "<Db>1E+300</Db>");
  assertEquals(serialize(-Infinity), "<Db>-INF</Db>");
  assertEquals(serialize(5n), "<I64>5</I64>");
  assertEquals(serialize(null), "<Nil />");
  assertEquals(serialize(new Uint8Array([1, 2])), "<BA>AQI=</BA>");
  assertEquals(serialize(new Date(0)), "<DT>1970-01-01T00:00:00.000Z</DT>");
  assertEquals(serialize(new PSPrimitive("Db", NaN)), "<Db>NaN</Db>");
  assertEquals(
    serialize([1, "a"]),
    '<Obj RefId="0"><TN RefId="0"><T>System.Object[]</T><T>System.Array</T><T>System.Object</T></TN><LST><I32>1</I32><S>a</S></LST></Obj>',
  );
  assertEquals(
    serialize(new Map([["k", 1]])),
    '<Obj RefId="0"><TN RefId="0"><T>System.Collections.Hashtable</T><T>System.Object</T></TN><DCT><En><S N="Key">k</S><I32 N="Value">1</I32></En></DCT></Obj>',
  );
});

Deno.test("serialize() writes repeated objects as Ref and repeated type names as TNRef, and survives a cycle", () => {
  const a = psBag({ x: 1 }, ["T.A", "System.Object"]);
  const b = psBag({ y: 2 }, ["T.A", "System.Object"]);
  a.extended.set("self", a);
  const text = serialize([a, a, b]);
  ok(text.includes('<Ref N="self" RefId="1" />'), text);
  ok(text.includes('<Ref RefId="1" />'), text);
  ok(text.includes('<TNRef RefId="1" />'), text);
  const back = deserialize(text) as PSObject;
  const [x, y, z] = back.items as PSObject[];
  ok(x === y && x.get("self") === x);
  assertEquals(z.typeNames, ["T.A", "System.Object"]);
});

Deno.test("deserialize(serialize(v)) keeps every type apart", () => {
  const values: PSValue[] = [
    "s",
    "",
    false,
    -3,
    9007199254740993n,
    null,
    new Uint8Array([0, 255]),
    ...(["C", "By", "SB", "U16", "I16", "U32", "Sg", "Db"] as const).map((t) => new PSPrimitive(t, 65)),
    new PSPrimitive("U64", 2n ** 64n - 1n),
    ...(["DT", "TS", "D", "G", "URI", "Version"] as const).map((t) => new PSPrimitive(t, `v&${t}`)),
    ...(["XD", "SBK"] as const).map((t) => new PSPrimitive(t, `<a>_x${t}\n</a>`)),
    psEnum("System.ConsoleColor", "Cyan", 11),
    new PSObject({
      typeNames: ["X"],
      toStringText: "x\ny",
      items: [1],
      itemsKind: "QUE",
      adapted: { "a b": 1 },
      extended: { "_x": new Map<PSValue, PSValue>([[1, [2]]]) },
    }),
  ];
  const back = deserializeAll(serializeDocument(values));
  assertEquals(back.length, values.length);
  assertEquals(back.slice(0, 7), values.slice(0, 7));
  for (let i = 7; i < values.length - 2; i++) {
    const [want, got] = [values[i] as PSPrimitive, back[i] as PSPrimitive];
    assertEquals([got.tag, got.value], [want.tag, want.value]);
  }
  const o = back.at(-1) as PSObject;
  assertEquals([o.typeNames, o.toString(), o.items, o.itemsKind, o.get("A B")], [["X"], "x\ny", [1], "QUE", 1]);
  const inner = (o.get("_x") as PSObject).dict!;
  assertEquals((inner.get(1) as PSObject).items, [2]);
});

Deno.test("PSSecureString carries UTF-16LE through the session key and never shows the secret", async () => {
  const s = await PSSecureString.encrypt("pä", PLAIN_SESSION_KEY);
  assertEquals([...s.cipher], [0x70, 0, 0xe4, 0]);
  assertEquals(serialize(s), "<SS>cADkAA==</SS>");
  const back = deserialize("<SS>cADkAA==</SS>") as PSSecureString;
  assertEquals(await back.decrypt(PLAIN_SESSION_KEY), "pä");
  assertEquals(JSON.stringify({ s }), '{"s":"<secure string>"}');
  assertEquals(Deno.inspect({ s }).includes("112"), false, Deno.inspect({ s }));
  assertEquals(Deno.inspect([s]), "[ PSSecureString <secure string> ]");
});

Deno.test("deserialize() reads a property set (<MS N=…>) and a <PR> progress record", () => {
  const o = deserialize('<Obj RefId="0"><MS><MS N="set"><I32 N="a">1</I32></MS></MS></Obj>') as PSObject;
  assertEquals((o.get("set") as PSObject).get("a"), 1);
  const p = deserialize(
    "<PR><AV>act</AV><AI>1</AI><Nil /><PI>-1</PI><PC>30</PC><T>Processing</T><SR>-1</SR><SD>stat</SD></PR>",
  ) as PSObject;
  assertEquals([p.get("Activity"), p.get("PercentComplete"), p.get("CurrentOperation")], ["act", 30, null]);
});

Deno.test("deserialize() refuses corrupt CLIXML with a PsrpError (exit 244)", () => {
  const bad = [
    "<S>unclosed",
    "<S>a</B>",
    "<Bogus />",
    "<I32>12x</I32>",
    "<I32>2147483648</I32>",
    "<By>-1</By>",
    "<B>yes</B>",
    "<Db>1..2</Db>",
    '<Ref RefId="9" />',
    '<Obj RefId="0"><TNRef RefId="4" /></Obj>',
    '<Obj RefId="0"><DCT><En><S N="Key">k</S></En></DCT></Obj>',
    '<Obj RefId="0"><MS><S>no name</S></MS></Obj>',
    "<BA>!!</BA>",
    "text",
    "<S>&bogus;</S>",
  ];
  for (const text of bad) {
    try {
      deserialize(text);
      throw new Error(`accepted: ${text}`);
    } catch (e) {
      if (!(e instanceof PsrpError)) throw new Error(`${text}: ${e}`);
      assertEquals(e.exitCode, 244);
    }
  }
});

Deno.test("deserialize() bounds depth and element count; serialize() bounds depth", () => {
  const deep = "<Obj><LST>".repeat(300) + "</LST></Obj>".repeat(300);
  throws(() => deserialize(deep), /deeper than 256/);
  const wide = `<Obj><LST>${"<Nil />".repeat(2000)}</LST></Obj>`;
  throws(() => deserialize(wide, { maxElements: 1000 }), /more than 1000 elements/);
  let nested: PSValue = 1;
  for (let i = 0; i < 100; i++) nested = [nested];
  throws(() => serialize(nested), /deeper than 64/);
});

Deno.test("PSPrimitive refuses values that do not fit its tag", () => {
  throws(() => new PSPrimitive("By", 256), RangeError);
  throws(() => new PSPrimitive("I16", 1.5), RangeError);
  throws(() => new PSPrimitive("U64", 1), RangeError);
  throws(() => new PSPrimitive("G", 1), RangeError);
  assertEquals(new PSPrimitive("DT", "2020-01-01T00:00:00Z").toDate().getTime(), Date.UTC(2020, 0, 1));
});
