/**
 * Text → typed value for each {@linkcode ParameterType}, and the "exact fit" test the positional
 * binder tries before coercion (PowerShell binds `5` to an `int` slot before a `string` one).
 *
 * @module
 */
import { exampleOf, expectedOf, type ParameterType } from "../plugins/mod.ts";

/** A converted value, or what was expected instead. */
export type Converted = { ok: true; value: unknown } | { ok: false; expected: string; example: string };

const INT = /^[+-]?\d+$/;
const DIGITS = /^\d+$/;
const GUID = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;
const DURATION = /^(\d+(?:\.\d+)?)([smhd]?)$/i;
const URL_WITH_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const UNIT_MS: Record<string, number> = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Converts argv text; switches take `true`/`false` (their `--flag=value` form). */
export function convertValue(type: ParameterType, text: string): Converted {
  const fail = (): Converted => ({ ok: false, expected: expectedOf(type), example: exampleOf(type) });
  switch (type.kind) {
    case "string":
      return { ok: true, value: text };
    case "int": {
      if (!INT.test(text)) return fail();
      const n = Number(text);
      if (!Number.isSafeInteger(n)) return fail();
      if (type.min !== undefined && n < type.min) return fail();
      if (type.max !== undefined && n > type.max) return fail();
      return { ok: true, value: n };
    }
    case "count": {
      // --verbose=3 as -vvv; a count has no other spelling of a value
      if (!/^\d{1,3}$/.test(text)) return fail();
      return { ok: true, value: Number(text) };
    }
    case "switch": {
      const t = text.toLowerCase();
      if (t === "true") return { ok: true, value: true };
      if (t === "false") return { ok: true, value: false };
      return fail();
    }
    case "uri":
      if (!URL_WITH_SCHEME.test(text) || !URL.canParse(text)) return fail();
      return { ok: true, value: new URL(text) };
    case "guid": {
      const m = GUID.exec(text);
      return m ? { ok: true, value: m[1].toLowerCase() } : fail();
    }
    case "duration": {
      const m = DURATION.exec(text);
      if (!m) return fail();
      return { ok: true, value: Math.round(Number(m[1]) * UNIT_MS[m[2].toLowerCase()]) };
    }
    case "map": {
      const eq = text.indexOf("=");
      if (eq <= 0) return fail();
      return { ok: true, value: [text.slice(0, eq), text.slice(eq + 1)] };
    }
    case "enum": {
      const found = type.values.find((v) => v.toLowerCase() === text.toLowerCase());
      return found === undefined ? fail() : { ok: true, value: found };
    }
    case "credential":
      return text.trim() === "" ? fail() : { ok: true, value: { user: text } };
    case "list": {
      if (type.split === false) return text === "" ? fail() : { ok: true, value: [text] };
      const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
      return items.length === 0 ? fail() : { ok: true, value: items };
    }
  }
}

/**
 * Whether bare text is naturally of `type`, with no coercion. All argv is text, so digits stand for
 * PowerShell's int literal: they fit an `int` slot exactly and a `string` slot only by coercion.
 */
export function fitsExactly(type: ParameterType, text: string): boolean {
  switch (type.kind) {
    case "int":
      return DIGITS.test(text);
    case "string":
    case "credential":
    case "list":
      return !DIGITS.test(text);
    case "uri":
      return URL_WITH_SCHEME.test(text) && URL.canParse(text);
    case "guid":
      return GUID.test(text);
    case "duration":
      return /^\d+(?:\.\d+)?[smhd]$/i.test(text);
    case "enum":
      return type.values.some((v) => v.toLowerCase() === text.toLowerCase());
    case "map":
      return text.indexOf("=") > 0;
    case "switch":
    case "count":
      return false;
  }
}
