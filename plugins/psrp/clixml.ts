/**
 * CLIXML, PowerShell's object serialisation (MS-PSRP §2.2.5), both ways, with a value model that keeps
 * every wire type distinct so objects round-trip.
 *
 * | JavaScript                        | CLIXML                                      |
 * | --------------------------------- | ------------------------------------------- |
 * | `string`                          | `<S>`                                       |
 * | `boolean`                         | `<B>`                                       |
 * | `number` (an int32)               | `<I32>`; any other number is written `<Db>` |
 * | `bigint`                          | `<I64>`                                     |
 * | `null` / `undefined`              | `<Nil/>`                                    |
 * | `Uint8Array`                      | `<BA>`                                      |
 * | `Date`                            | `<DT>` (read back as a `PSPrimitive` "DT")  |
 * | `PSPrimitive`                     | its tag: C, DT, TS, By, SB, U16, I16, U32, U64, Sg, Db, D, G, URI, Version, XD, SBK |
 * | `PSSecureString`                  | `<SS>`                                      |
 * | array                             | `<Obj>` System.Object[] with `<LST>`        |
 * | `Map`                             | `<Obj>` Hashtable with `<DCT>`              |
 * | `PSObject`                        | `<Obj>` with type names, ToString, Props, MS, a container |
 *
 * Reading returns `PSObject` for every `<Obj>` (arrays and hashtables included, with `items`/`dict`) and
 * resolves `<Ref>` to the same instance; writing turns a repeated object into `<Ref>` and a repeated type
 * name list into `<TNRef>`, as PowerShell does. Both directions are bounded in depth and size.
 *
 * @module
 */
import { parseXml, type XmlElement, type XmlLimits } from "./_xml.ts";
import { PsrpError } from "./errors.ts";
import { base64Decode, base64Encode } from "./packet.ts";

/** Tags of primitives that have no JavaScript type of their own. */
export type PrimitiveTag =
  | "C"
  | "DT"
  | "TS"
  | "By"
  | "SB"
  | "U16"
  | "I16"
  | "U32"
  | "I32"
  | "U64"
  | "I64"
  | "Sg"
  | "Db"
  | "D"
  | "G"
  | "URI"
  | "Version"
  | "XD"
  | "SBK";

const NUMBER_TAGS = new Set(["By", "SB", "U16", "I16", "U32", "I32", "Sg", "Db", "C"]);
const BIGINT_TAGS = new Set(["U64", "I64"]);
const TEXT_TAGS = new Set(["DT", "TS", "D", "G", "URI", "Version", "XD", "SBK"]);
const INT_RANGES: Record<string, [bigint, bigint]> = {
  By: [0n, 255n],
  SB: [-128n, 127n],
  U16: [0n, 65535n],
  I16: [-32768n, 32767n],
  C: [0n, 65535n],
  U32: [0n, 4294967295n],
  I32: [-2147483648n, 2147483647n],
  U64: [0n, 18446744073709551615n],
  I64: [-9223372036854775808n, 9223372036854775807n],
};

/**
 * A primitive kept with its wire tag: numbers for the small integer and floating tags and `C` (a UTF-16
 * code unit), `bigint` for U64/I64, text for DT, TS, D, G, URI, Version, XD and SBK (kept as PowerShell
 * wrote them, so a DateTime keeps its 100 ns ticks and its offset).
 *
 * @example
 * ```ts
 * import { PSPrimitive, serialize } from "./clixml.ts";
 * console.assert(serialize(new PSPrimitive("U16", 7)) === "<U16>7</U16>");
 * console.assert(serialize(new PSPrimitive("G", "0f8fad5b-d9cb-469f-a165-70867728950e")).startsWith("<G>"));
 * ```
 */
export class PSPrimitive {
  readonly tag: PrimitiveTag;
  readonly value: number | bigint | string;

  /** @throws {RangeError} when the value does not fit the tag */
  constructor(tag: PrimitiveTag, value: number | bigint | string) {
    if (NUMBER_TAGS.has(tag)) {
      if (typeof value !== "number") throw new RangeError(`${tag} holds a number`);
      if (tag in INT_RANGES) checkRange(tag, value);
    } else if (BIGINT_TAGS.has(tag)) {
      if (typeof value !== "bigint") throw new RangeError(`${tag} holds a bigint`);
      checkRange(tag, value);
    } else if (typeof value !== "string") throw new RangeError(`${tag} holds text`);
    this.tag = tag;
    this.value = value;
  }

  /** A DateTime as a JavaScript Date (millisecond precision). */
  toDate(): Date {
    if (this.tag !== "DT") throw new TypeError(`${this.tag} is not a DateTime`);
    return new Date(String(this.value));
  }

  /** The value as JSON shows it: numbers as numbers, 64-bit integers and text as strings. */
  toJSON(): number | string {
    return typeof this.value === "bigint" ? this.value.toString() : this.value;
  }

  /** The value as text. */
  toString(): string {
    return String(this.value);
  }
}

function checkRange(tag: string, value: number | bigint): void {
  const [lo, hi] = INT_RANGES[tag];
  if (typeof value === "number" && !Number.isInteger(value)) throw new RangeError(`${tag} holds an integer`);
  const b = BigInt(value);
  if (b < lo || b > hi) throw new RangeError(`${value} does not fit ${tag}`);
}

/**
 * How a session key encrypts and decrypts secure strings. Protocol 2.4 (PowerShell 7.6) needs none
 * ({@linkcode PLAIN_SESSION_KEY}); below it, the AES key of the PUBLIC_KEY / ENCRYPTED_SESSION_KEY exchange
 * (MS-PSRP §2.2.2.3–4, §2.2.5.1.24) goes behind this interface.
 */
export interface SessionKey {
  encrypt(plain: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decrypt(cipher: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** Protocol 2.4's "key": secure strings travel as base64 of their UTF-16LE text. */
export const PLAIN_SESSION_KEY: SessionKey = { encrypt: (p) => p, decrypt: (c) => c };

/**
 * A `<SS>` value: the bytes on the wire, which only the session key opens.
 *
 * @example
 * ```ts
 * import { PLAIN_SESSION_KEY, PSSecureString } from "./clixml.ts";
 * const ss = await PSSecureString.encrypt("s3cret", PLAIN_SESSION_KEY);
 * console.assert(await ss.decrypt(PLAIN_SESSION_KEY) === "s3cret");
 * ```
 */
export class PSSecureString {
  readonly cipher: Uint8Array;

  constructor(cipher: Uint8Array) {
    this.cipher = cipher;
  }

  /** Encrypts `text` (as UTF-16LE) with `key`. */
  static async encrypt(text: string, key: SessionKey): Promise<PSSecureString> {
    const plain = new Uint8Array(text.length * 2);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      plain[i * 2] = c & 0xff;
      plain[i * 2 + 1] = c >> 8;
    }
    return new PSSecureString(await key.encrypt(plain));
  }

  /** The text, decrypted with `key`. */
  async decrypt(key: SessionKey): Promise<string> {
    const plain = await key.decrypt(this.cipher);
    let s = "";
    for (let i = 0; i + 1 < plain.length; i += 2) s += String.fromCharCode(plain[i] | (plain[i + 1] << 8));
    return s;
  }

  /** Never the secret. */
  toJSON(): string {
    return "<secure string>";
  }

  /** Never the secret. */
  toString(): string {
    return "<secure string>";
  }

  /** Never the secret, in Deno's console either (at protocol 2.4 the bytes are the text itself). */
  [Symbol.for("Deno.customInspect")](): string {
    return "PSSecureString <secure string>";
  }

  /** Never the secret, in Node's util.inspect either. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "PSSecureString <secure string>";
  }
}

/** Any value CLIXML carries. */
export type PSValue =
  | null
  | undefined
  | string
  | boolean
  | number
  | bigint
  | Date
  | Uint8Array
  | PSPrimitive
  | PSSecureString
  | PSObject
  | PSValue[]
  | Map<PSValue, PSValue>;

/** The container element of a complex object. */
export type ContainerKind = "LST" | "IE" | "STK" | "QUE";

/** Fields of a {@linkcode PSObject}. */
export interface PSObjectInit {
  typeNames?: string[];
  toStringText?: string;
  value?: PSValue;
  items?: PSValue[];
  itemsKind?: ContainerKind;
  dict?: Map<PSValue, PSValue>;
  adapted?: Map<string, PSValue> | Record<string, PSValue>;
  extended?: Map<string, PSValue> | Record<string, PSValue>;
}

/**
 * A complex object (MS-PSRP §2.2.5.2): type names most specific first, its ToString text, an optional
 * primitive it extends, one container (list or dictionary), adapted properties (`<Props>`) and extended
 * ones (`<MS>`).
 *
 * @example
 * ```ts
 * import { PSObject } from "./clixml.ts";
 * const o = new PSObject({ typeNames: ["System.Management.Automation.PSCustomObject", "System.Object"], extended: { Name: "x" } });
 * console.assert(o.get("name") === "x");
 * ```
 */
export class PSObject {
  typeNames: string[];
  toStringText?: string;
  value?: PSValue;
  items?: PSValue[];
  itemsKind: ContainerKind;
  dict?: Map<PSValue, PSValue>;
  adapted: Map<string, PSValue>;
  extended: Map<string, PSValue>;

  constructor(init: PSObjectInit = {}) {
    this.typeNames = init.typeNames ?? [];
    this.toStringText = init.toStringText;
    this.value = init.value;
    this.items = init.items;
    this.itemsKind = init.itemsKind ?? "LST";
    this.dict = init.dict;
    this.adapted = toMap(init.adapted);
    this.extended = toMap(init.extended);
  }

  /** A property by name, matched without regard to case as PowerShell does; extended first, then adapted. */
  get(name: string): PSValue {
    return lookup(this.extended, name) ?? lookup(this.adapted, name);
  }

  /** Whether a property of that name exists. */
  has(name: string): boolean {
    return lookup(this.extended, name) !== undefined || lookup(this.adapted, name) !== undefined ||
      [...this.extended.keys(), ...this.adapted.keys()].some((k) => k.toLowerCase() === name.toLowerCase());
  }

  /** The ToString text PowerShell sent, else the primitive's text. */
  toString(): string {
    return this.toStringText ?? (this.value !== undefined && this.value !== null ? String(this.value) : "");
  }
}

function toMap(m: Map<string, PSValue> | Record<string, PSValue> | undefined): Map<string, PSValue> {
  if (!m) return new Map();
  return m instanceof Map ? m : new Map(Object.entries(m));
}

function lookup(m: Map<string, PSValue>, name: string): PSValue {
  if (m.has(name)) return m.get(name);
  const lower = name.toLowerCase();
  for (const [k, v] of m) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/**
 * An enum value as PowerShell writes it: type names [enum, System.Enum, System.ValueType, System.Object],
 * ToString the member name, the I32 value.
 *
 * @example
 * ```ts
 * import { psEnum } from "./clixml.ts";
 * const e = psEnum("System.Threading.ApartmentState", "Unknown", 2);
 * console.assert(e.value === 2 && e.typeNames[1] === "System.Enum");
 * ```
 */
export function psEnum(typeName: string, name: string, value: number): PSObject {
  return new PSObject({
    typeNames: [typeName, "System.Enum", "System.ValueType", "System.Object"],
    toStringText: name,
    value,
  });
}

/**
 * A property bag with only extended properties (`<Obj><MS>…</MS></Obj>`), the shape of every PSRP message.
 *
 * @example
 * ```ts
 * import { psBag, serialize } from "./clixml.ts";
 * console.assert(serialize(psBag({ ci: 1n })) === '<Obj RefId="0"><MS><I64 N="ci">1</I64></MS></Obj>');
 * ```
 */
export function psBag(props: Record<string, PSValue>, typeNames: string[] = []): PSObject {
  return new PSObject({ typeNames, extended: props });
}

// ---------------------------------------------------------------- strings (MS-PSRP §2.2.5.3.2)

/**
 * Text as CLIXML carries it: control characters, surrogates and a `_` that starts `_x` become `_xHHHH_`.
 *
 * @example
 * ```ts
 * import { encodeString } from "./clixml.ts";
 * console.assert(encodeString("a\nb_x") === "a_x000A_b_x005F_x");
 * ```
 */
export function encodeString(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (
      c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff ||
      (c === 0x5f && (s[i + 1] === "x" || s[i + 1] === "X"))
    ) {
      out += `_x${c.toString(16).toUpperCase().padStart(4, "0")}_`;
    } else out += s[i];
  }
  return out;
}

/**
 * The text of CLIXML-encoded text (`XmlConvert.DecodeName`: `_xHHHH_` and `_xHHHHHHHH_`).
 *
 * @example
 * ```ts
 * import { decodeString } from "./clixml.ts";
 * console.assert(decodeString("_xD83C__xDF13_") === "\u{1F313}");
 * ```
 */
export function decodeString(s: string): string {
  if (!s.includes("_x") && !s.includes("_X")) return s;
  return s.replace(/_[xX]([0-9A-Fa-f]{8}|[0-9A-Fa-f]{4})_/g, (_, hex: string) => {
    const code = parseInt(hex, 16);
    return hex.length === 4 ? String.fromCharCode(code) : String.fromCodePoint(code);
  });
}

function escText(s: string): string {
  return s.replace(/[&<>]/g, (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;");
}

function escAttr(s: string): string {
  return escText(s).replace(/"/g, "&quot;");
}

// ---------------------------------------------------------------- writing

/** Options of {@linkcode serialize}. */
export interface SerializeOptions {
  /** deepest nesting of objects (default 64) */
  maxDepth?: number;
}

/**
 * CLIXML of one value, without the `<Objs>` root (as PSRP messages carry it). RefIds and type-name ids
 * are numbered per call.
 *
 * @throws {PsrpError} when nesting is deeper than `maxDepth`
 * @example
 * ```ts
 * import { serialize } from "./clixml.ts";
 * console.assert(serialize("a<b") === "<S>a&lt;b</S>");
 * console.assert(serialize(5) === "<I32>5</I32>" && serialize(5n) === "<I64>5</I64>");
 * ```
 */
export function serialize(value: PSValue, options: SerializeOptions = {}): string {
  const w = new Writer(options.maxDepth ?? 64);
  w.value(value, undefined, 0);
  return w.out.join("");
}

/**
 * A document as `Export-Clixml` and `PSSerializer.Serialize` write it: the `<Objs>` root holding each value.
 *
 * @example
 * ```ts
 * import { serializeDocument } from "./clixml.ts";
 * console.assert(serializeDocument([1]).startsWith('<Objs Version="1.1.0.1"'));
 * ```
 */
export function serializeDocument(values: PSValue[], options: SerializeOptions = {}): string {
  const w = new Writer(options.maxDepth ?? 64);
  w.out.push('<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">');
  for (const v of values) w.value(v, undefined, 0);
  w.out.push("</Objs>");
  return w.out.join("");
}

class Writer {
  out: string[] = [];
  #refs = new Map<object, number>();
  #typeNames = new Map<string, number>();
  #maxDepth: number;

  constructor(maxDepth: number) {
    this.#maxDepth = maxDepth;
  }

  #leaf(tag: string, name: string | undefined, text: string): void {
    const n = name === undefined ? "" : ` N="${escAttr(encodeString(name))}"`;
    this.out.push(text === "" ? `<${tag}${n} />` : `<${tag}${n}>${text}</${tag}>`);
  }

  value(v: PSValue, name: string | undefined, depth: number): void {
    if (v === null || v === undefined) return this.#leaf("Nil", name, "");
    switch (typeof v) {
      case "string":
        return this.#leaf("S", name, escText(encodeString(v)));
      case "boolean":
        return this.#leaf("B", name, v ? "true" : "false");
      case "number":
        if (Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 && !Object.is(v, -0)) {
          return this.#leaf("I32", name, String(v));
        }
        return this.#leaf("Db", name, formatFloat(v));
      case "bigint":
        checkRange("I64", v);
        return this.#leaf("I64", name, v.toString());
    }
    if (v instanceof PSPrimitive) {
      const text = v.tag === "Sg" || v.tag === "Db"
        ? formatFloat(v.value as number)
        : TEXT_TAGS.has(v.tag)
        ? escText(v.tag === "XD" || v.tag === "SBK" ? encodeString(String(v.value)) : String(v.value))
        : String(v.value);
      return this.#leaf(v.tag, name, text);
    }
    if (v instanceof Date) {
      if (isNaN(v.getTime())) throw new RangeError("an invalid Date has no CLIXML form");
      return this.#leaf("DT", name, v.toISOString());
    }
    if (v instanceof Uint8Array) return this.#leaf("BA", name, base64Encode(v));
    if (v instanceof PSSecureString) return this.#leaf("SS", name, base64Encode(v.cipher));
    const n = name === undefined ? "" : ` N="${escAttr(encodeString(name))}"`;
    const seen = this.#refs.get(v);
    if (seen !== undefined) {
      this.out.push(`<Ref${n} RefId="${seen}" />`);
      return;
    }
    if (depth >= this.#maxDepth) throw new PsrpError(`cannot serialise: objects nest deeper than ${this.#maxDepth}`);
    const refId = this.#refs.size;
    this.#refs.set(v, refId);
    this.out.push(`<Obj${n} RefId="${refId}">`);
    if (Array.isArray(v)) {
      this.#tn(["System.Object[]", "System.Array", "System.Object"]);
      this.#list("LST", v, depth);
    } else if (v instanceof Map) {
      this.#tn(["System.Collections.Hashtable", "System.Object"]);
      this.#dict(v, depth);
    } else {
      if (v.typeNames.length) this.#tn(v.typeNames);
      if (v.toStringText !== undefined) this.#leaf("ToString", undefined, escText(encodeString(v.toStringText)));
      if (v.value !== undefined) this.value(v.value, undefined, depth + 1);
      if (v.items) this.#list(v.itemsKind, v.items, depth);
      else if (v.dict) this.#dict(v.dict, depth);
      this.#props("Props", v.adapted, depth);
      this.#props("MS", v.extended, depth);
    }
    this.out.push("</Obj>");
  }

  #tn(names: string[]): void {
    const key = names.join("\0");
    const seen = this.#typeNames.get(key);
    if (seen !== undefined) {
      this.out.push(`<TNRef RefId="${seen}" />`);
      return;
    }
    const id = this.#typeNames.size;
    this.#typeNames.set(key, id);
    this.out.push(`<TN RefId="${id}">${names.map((t) => `<T>${escText(encodeString(t))}</T>`).join("")}</TN>`);
  }

  #list(kind: ContainerKind, items: PSValue[], depth: number): void {
    if (!items.length) return void this.out.push(`<${kind} />`);
    this.out.push(`<${kind}>`);
    for (const item of items) this.value(item, undefined, depth + 1);
    this.out.push(`</${kind}>`);
  }

  #dict(dict: Map<PSValue, PSValue>, depth: number): void {
    if (!dict.size) return void this.out.push("<DCT />");
    this.out.push("<DCT>");
    for (const [k, val] of dict) {
      this.out.push("<En>");
      this.value(k, "Key", depth + 1);
      this.value(val, "Value", depth + 1);
      this.out.push("</En>");
    }
    this.out.push("</DCT>");
  }

  #props(tag: "Props" | "MS", props: Map<string, PSValue>, depth: number): void {
    if (!props.size) return;
    this.out.push(`<${tag}>`);
    for (const [k, val] of props) this.value(val, k, depth + 1);
    this.out.push(`</${tag}>`);
  }
}

function formatFloat(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "INF";
  if (v === -Infinity) return "-INF";
  if (Object.is(v, -0)) return "-0";
  return String(v).replace("e", "E");
}

// ---------------------------------------------------------------- reading

/** Options of {@linkcode deserialize}. */
export interface DeserializeOptions extends XmlLimits {}

/**
 * The value of CLIXML text holding one object (a PSRP message's data), or of a document with an `<Objs>`
 * root holding exactly one.
 *
 * @throws {PsrpError} on malformed CLIXML, an unknown element, a dangling `<Ref>`, or a limit exceeded
 * @example
 * ```ts
 * import { deserialize, PSObject } from "./clixml.ts";
 * console.assert(deserialize("<I32>42</I32>") === 42);
 * const o = deserialize('<Obj RefId="0"><MS><S N="a">x</S></MS></Obj>') as PSObject;
 * console.assert(o.get("a") === "x");
 * ```
 */
export function deserialize(text: string, options: DeserializeOptions = {}): PSValue {
  const all = deserializeAll(text, options);
  if (all.length !== 1) throw new PsrpError(`expected one CLIXML object, found ${all.length}`);
  return all[0];
}

/**
 * Every top-level value of CLIXML text; an `<Objs>` root (as `Export-Clixml` writes) is looked through.
 *
 * @throws {PsrpError} as {@linkcode deserialize}
 * @example
 * ```ts
 * import { deserializeAll } from "./clixml.ts";
 * const v = deserializeAll('<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S>a</S><B>true</B></Objs>');
 * console.assert(v.length === 2 && v[1] === true);
 * ```
 */
export function deserializeAll(text: string, options: DeserializeOptions = {}): PSValue[] {
  let roots = parseXml(text, options);
  if (roots.length === 1 && roots[0].name === "Objs") roots = roots[0].children;
  const r = new Reader();
  return roots.map((el) => r.value(el));
}

class Reader {
  #refs = new Map<string, PSObject>();
  #typeNames = new Map<string, string[]>();

  value(el: XmlElement): PSValue {
    const t = el.text;
    switch (el.name) {
      case "Nil":
        return null;
      case "S":
        return decodeString(t);
      case "B":
        if (t.trim() === "true") return true;
        if (t.trim() === "false") return false;
        throw bad(el, t);
      case "I32":
        return int(el, "I32") as number;
      case "I64":
        return int(el, "I64") as bigint;
      case "By":
      case "SB":
      case "U16":
      case "I16":
      case "U32":
      case "C":
        return new PSPrimitive(el.name, int(el, el.name) as number);
      case "U64":
        return new PSPrimitive("U64", int(el, "U64") as bigint);
      case "Sg":
      case "Db":
        return new PSPrimitive(el.name, parseFloatText(el));
      case "DT":
      case "TS":
      case "D":
      case "G":
      case "URI":
      case "Version":
        return new PSPrimitive(el.name, t.trim());
      case "XD":
      case "SBK":
        return new PSPrimitive(el.name, decodeString(t));
      case "BA":
      case "SS":
        try {
          const bytes = base64Decode(t.replace(/\s+/g, ""));
          return el.name === "BA" ? bytes : new PSSecureString(bytes);
        } catch (cause) {
          throw new PsrpError(`CLIXML ${el.name} holds invalid base64`, { cause });
        }
      case "Ref": {
        const id = el.attrs.get("RefId") ?? "";
        const o = this.#refs.get(id);
        if (!o) throw new PsrpError(`CLIXML Ref ${id.slice(0, 20)} points to no earlier object`);
        return o;
      }
      case "Obj":
        return this.#obj(el);
      case "PR":
        return progressRecordElement(el, this);
    }
    throw new PsrpError(`unknown CLIXML element <${el.name.slice(0, 40)}>`);
  }

  #obj(el: XmlElement): PSObject {
    const o = new PSObject();
    const refId = el.attrs.get("RefId");
    if (refId !== undefined) this.#refs.set(refId, o);
    for (const c of el.children) {
      switch (c.name) {
        case "TN": {
          const names = c.children.map((t) => {
            if (t.name !== "T") throw new PsrpError(`CLIXML TN holds <${t.name.slice(0, 40)}>`);
            return decodeString(t.text);
          });
          const id = c.attrs.get("RefId");
          if (id !== undefined) this.#typeNames.set(id, names);
          o.typeNames = names;
          break;
        }
        case "TNRef": {
          const names = this.#typeNames.get(c.attrs.get("RefId") ?? "");
          if (!names) throw new PsrpError("CLIXML TNRef points to no earlier type names");
          o.typeNames = names.slice();
          break;
        }
        case "ToString":
          o.toStringText = decodeString(c.text);
          break;
        case "LST":
        case "IE":
        case "STK":
        case "QUE":
          o.items = c.children.map((i) => this.value(i));
          o.itemsKind = c.name;
          break;
        case "DCT": {
          const dict = new Map<PSValue, PSValue>();
          for (const en of c.children) {
            if (en.name !== "En") throw new PsrpError(`CLIXML DCT holds <${en.name.slice(0, 40)}>`);
            const k = en.children.find((x) => x.attrs.get("N") === "Key");
            const v = en.children.find((x) => x.attrs.get("N") === "Value");
            if (!k || !v) throw new PsrpError("CLIXML dictionary entry lacks a Key or Value");
            dict.set(this.value(k), this.value(v));
          }
          o.dict = dict;
          break;
        }
        case "Props":
        case "MS":
          this.#props(c, c.name === "Props" ? o.adapted : o.extended);
          break;
        default:
          o.value = this.value(c);
      }
    }
    return o;
  }

  #props(el: XmlElement, into: Map<string, PSValue>): void {
    for (const c of el.children) {
      const n = c.attrs.get("N");
      if (n === undefined) throw new PsrpError(`CLIXML property <${c.name.slice(0, 40)}> has no name`);
      // PowerShell writes a nested property set as <MS N="name">; read it as a bag of its own
      into.set(decodeString(n), c.name === "MS" ? this.#propertySet(c) : this.value(c));
    }
  }

  #propertySet(el: XmlElement): PSObject {
    const o = new PSObject();
    this.#props(el, o.extended);
    return o;
  }
}

function bad(el: XmlElement, t: string): PsrpError {
  return new PsrpError(`CLIXML <${el.name}> holds an invalid value: ${t.slice(0, 40)}`);
}

function int(el: XmlElement, tag: string): number | bigint {
  const t = el.text.trim();
  if (!/^[-+]?\d{1,20}$/.test(t)) throw bad(el, t);
  const b = BigInt(t);
  const [lo, hi] = INT_RANGES[tag];
  if (b < lo || b > hi) throw bad(el, t);
  return BIGINT_TAGS.has(tag) ? b : Number(b);
}

function parseFloatText(el: XmlElement): number {
  const t = el.text.trim();
  if (t === "INF" || t === "Infinity") return Infinity;
  if (t === "-INF" || t === "-Infinity") return -Infinity;
  if (t === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) throw bad(el, t);
  return Number(t);
}

// `<PR>` is how a ProgressRecord is written outside PSRP (PowerShell's SerializationStrings: AV activity,
// AI activity id, S/Nil current operation, PI parent id, PC percent, T type, SR seconds remaining, SD status).
function progressRecordElement(el: XmlElement, r: Reader): PSObject {
  const get = (tag: string) => el.children.find((c) => c.name === tag);
  const op = el.children[2];
  const num = (tag: string) => {
    const c = get(tag);
    return c ? Number(int(c, "I32")) : -1;
  };
  return new PSObject({
    typeNames: ["System.Management.Automation.ProgressRecord", "System.Object"],
    adapted: {
      Activity: decodeString(get("AV")?.text ?? ""),
      ActivityId: num("AI"),
      CurrentOperation: op ? r.value(op) : null,
      ParentActivityId: num("PI"),
      PercentComplete: num("PC"),
      RecordType: decodeString(get("T")?.text ?? "Processing"),
      SecondsRemaining: num("SR"),
      StatusDescription: decodeString(get("SD")?.text ?? ""),
    },
  });
}
