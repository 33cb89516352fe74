/**
 * The character set of Basic credentials. RFC 7617 lets a server ask for UTF-8 (`charset="UTF-8"`),
 * but WinRM never does: Windows' own client (Enter-PSSession) sends the user name and password in the
 * system's ANSI code page and the WinRM service decodes them the same way, so a Cyrillic
 * administrator name works from Windows in windows-1251 and fails from a client that sends UTF-8
 * (chef/knife-windows issue 424). Python clients (pywinrm, pypsrp through requests) send Latin-1,
 * which windows-1252 extends. The default is therefore windows-1252, the ANSI code page of English
 * and Western European Windows, and `--basic-charset` names another host's code page.
 *
 * @module
 */

/** The code pages `--basic-charset` accepts: Windows ANSI code pages by number, and UTF-8. */
export const BASIC_CHARSETS = [
  "windows-1252",
  "windows-1250",
  "windows-1251",
  "windows-1253",
  "windows-1254",
  "windows-1255",
  "windows-1256",
  "windows-1257",
  "windows-1258",
  "windows-874",
  "windows-932",
  "windows-936",
  "windows-949",
  "windows-950",
  "utf-8",
] as const;

/** One of {@linkcode BASIC_CHARSETS}. */
export type BasicCharset = typeof BASIC_CHARSETS[number];

/** What an en-US or Western European Windows host decodes Basic credentials with. */
export const DEFAULT_BASIC_CHARSET: BasicCharset = "windows-1252";

/** The WHATWG Encoding label of each double-byte ANSI code page. */
const DOUBLE_BYTE: Partial<Record<BasicCharset, string>> = {
  "windows-932": "shift_jis",
  "windows-936": "gbk",
  "windows-949": "euc-kr",
  "windows-950": "big5",
};

const tables = new Map<BasicCharset, Map<string, number[]>>();

/** char → bytes, built once per code page from the platform's decoder (TextDecoder knows them all) */
function table(charset: BasicCharset): Map<string, number[]> {
  let t = tables.get(charset);
  if (t) return t;
  t = new Map();
  const label = DOUBLE_BYTE[charset] ?? charset;
  const decoder = new TextDecoder(label, { fatal: true });
  const add = (bytes: number[]) => {
    let s: string;
    try {
      s = decoder.decode(new Uint8Array(bytes));
    } catch {
      return; // not a complete character
    }
    if (s.length === 1 && !t!.has(s)) t!.set(s, bytes);
  };
  for (let b = 0x80; b <= 0xff; b++) add([b]);
  if (DOUBLE_BYTE[charset]) {
    for (let lead = 0x81; lead <= 0xfe; lead++) for (let trail = 0x40; trail <= 0xfe; trail++) add([lead, trail]);
  }
  tables.set(charset, t);
  return t;
}

/**
 * Encodes `text` in `charset`, or returns undefined when a character has no code in it.
 *
 * @example Latin-1 letters in windows-1252
 * ```ts
 * import { encodeBasic } from "./basic_charset.ts";
 * console.assert(encodeBasic("jörg", "windows-1252")?.join(",") === "106,246,114,103");
 * console.assert(encodeBasic("Админ", "windows-1252") === undefined);
 * ```
 */
export function encodeBasic(text: string, charset: BasicCharset): Uint8Array | undefined {
  if (charset === "utf-8") return new TextEncoder().encode(text);
  const out: number[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else {
      const bytes = table(charset).get(ch);
      if (!bytes) return undefined;
      out.push(...bytes);
    }
  }
  return new Uint8Array(out);
}

/** True when `text` is plain ASCII, which every code page encodes alike. */
export function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
