/**
 * A small, strict XML reader for the subset CLIXML uses (elements, attributes, text, character and the five
 * predefined entity references, comments, an XML declaration, CDATA). Bounded: element count and depth are
 * limited, so hostile input fails fast instead of exhausting memory or the stack.
 *
 * @module
 */
import { PsrpError } from "./errors.ts";

/** One element: name, attributes, child elements and its text (text nodes joined). */
export interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: XmlElement[];
  text: string;
}

/** Limits of {@linkcode parseXml}. */
export interface XmlLimits {
  /** most elements in one document (default 1,000,000) */
  maxElements?: number;
  /** deepest nesting (default 256) */
  maxDepth?: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const ATTR = /\s*([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;

/**
 * The top-level elements of `text`.
 *
 * @throws {PsrpError} on malformed XML or a limit exceeded
 */
export function parseXml(text: string, limits: XmlLimits = {}): XmlElement[] {
  const maxElements = limits.maxElements ?? 1_000_000;
  const maxDepth = limits.maxDepth ?? 256;
  const roots: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let count = 0;
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    throw new PsrpError(`malformed CLIXML: ${what} at offset ${i}`);
  };
  while (i < n) {
    const lt = text.indexOf("<", i);
    const end = lt < 0 ? n : lt;
    if (end > i) {
      const chunk = text.slice(i, end);
      if (stack.length) stack[stack.length - 1].text += decodeEntities(chunk, fail);
      else if (chunk.trim() && !(i === 0 && chunk === "\ufeff")) fail("text outside an element");
      i = end;
      continue;
    }
    if (text.startsWith("<?", i)) {
      const close = text.indexOf("?>", i);
      if (close < 0) fail("unterminated declaration");
      i = close + 2;
    } else if (text.startsWith("<!--", i)) {
      const close = text.indexOf("-->", i);
      if (close < 0) fail("unterminated comment");
      i = close + 3;
    } else if (text.startsWith("<![CDATA[", i)) {
      const close = text.indexOf("]]>", i);
      if (close < 0 || !stack.length) fail("bad CDATA section");
      stack[stack.length - 1].text += text.slice(i + 9, close);
      i = close + 3;
    } else if (text.startsWith("</", i)) {
      NAME.lastIndex = i + 2;
      const m = NAME.exec(text);
      if (!m) fail("bad end tag");
      const top = stack.pop();
      if (!top || top.name !== m![0]) fail(`end tag ${m![0]} does not match`);
      i = NAME.lastIndex;
      while (i < n && /\s/.test(text[i])) i++;
      if (text[i] !== ">") fail("bad end tag");
      i++;
    } else {
      NAME.lastIndex = i + 1;
      const m = NAME.exec(text);
      if (!m) fail("bad start tag");
      i = NAME.lastIndex;
      const el: XmlElement = { name: m![0], attrs: new Map(), children: [], text: "" };
      for (;;) {
        ATTR.lastIndex = i;
        const a = ATTR.exec(text);
        if (!a) break;
        if (el.attrs.has(a[1])) fail(`attribute ${a[1]} twice`);
        el.attrs.set(a[1], decodeEntities(a[2] ?? a[3], fail));
        i = ATTR.lastIndex;
      }
      while (i < n && /\s/.test(text[i])) i++;
      let selfClosing = false;
      if (text.startsWith("/>", i)) {
        selfClosing = true;
        i += 2;
      } else if (text[i] === ">") i++;
      else fail("bad start tag");
      if (++count > maxElements) throw new PsrpError(`CLIXML has more than ${maxElements} elements`);
      if (stack.length) stack[stack.length - 1].children.push(el);
      else roots.push(el);
      if (!selfClosing) {
        if (stack.length >= maxDepth) throw new PsrpError(`CLIXML nests deeper than ${maxDepth} elements`);
        stack.push(el);
      }
    }
  }
  if (stack.length) fail(`element ${stack[stack.length - 1].name} is not closed`);
  return roots;
}

function decodeEntities(s: string, fail: (what: string) => never): string {
  if (!s.includes("&")) return s;
  return s.replace(/&([^;&]{0,10});?/g, (whole, name: string) => {
    if (!whole.endsWith(";")) fail("bad entity reference");
    switch (name) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "amp":
        return "&";
      case "quot":
        return '"';
      case "apos":
        return "'";
    }
    const code = name.startsWith("#x")
      ? parseInt(name.slice(2), 16)
      : name.startsWith("#")
      ? parseInt(name.slice(1), 10)
      : NaN;
    if (!Number.isInteger(code) || code < 0 || code > 0x10ffff) fail(`unknown entity &${name};`);
    return String.fromCodePoint(code);
  });
}

/** `s` with `&`, `<`, `>` (and quotes, for attributes) escaped. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;");
}
