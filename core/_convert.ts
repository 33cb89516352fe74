/**
 * Text → typed value for each {@linkcode ParameterType}, and the "exact fit" test the positional
 * binder tries before coercion (PowerShell binds `5` to an `int` slot before a `string` one).
 *
 * @module
 */
import type { ParameterType } from "../plugins/mod.ts";

/** A converted value, or what was expected instead. */
export type Converted = { ok: true; value: unknown } | { ok: false; expected: string; example: string };

const INT = /^[+-]?\d+$/;
const DIGITS = /^\d+$/;
const GUID = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;
const DURATION = /^(\d+(?:\.\d+)?)([smhd]?)$/i;
const URL_WITH_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const UNIT_MS: Record<string, number> = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** What a value of `type` looks like, for messages: "an integer from 1 to 65535". */
export function expectedOf(type: ParameterType): string {
  switch (type.kind) {
    case "int":
      if (type.min !== undefined && type.max !== undefined) return `an integer from ${type.min} to ${type.max}`;
      if (type.min !== undefined) return `an integer of at least ${type.min}`;
      if (type.max !== undefined) return `an integer of at most ${type.max}`;
      return "an integer";
    case "uri":
      return "a url with a scheme";
    case "guid":
      return "a guid";
    case "duration":
      return "a duration (90s, 15m, 15h, 2d or seconds)";
    case "map":
      return "key=value";
    case "enum":
      return `one of ${type.values.join(", ")}`;
    case "credential":
      return "a user name";
    case "switch":
      return "true or false";
    case "list":
    case "string":
      return "a value";
  }
}

/** A valid sample value of `type`, for hints. */
export function exampleOf(type: ParameterType): string {
  switch (type.kind) {
    case "int": {
      const fits = (n: number) =>
        (type.min === undefined || n >= type.min) && (type.max === undefined || n <= type.max);
      return String(fits(22) ? 22 : fits(5) ? 5 : type.min ?? type.max ?? 1);
    }
    case "uri":
      return "https://host:5986/wsman";
    case "guid":
      return "0b4a3c2e-6f1d-4e8a-9c7b-2d5e8f1a3b6c";
    case "duration":
      return "15m";
    case "map":
      return "Key=Value";
    case "enum":
      return type.values[0] ?? "value";
    case "credential":
      return "CORP\\admin";
    case "switch":
      return "false";
    case "list":
    case "string":
      return "value";
  }
}

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
      return false;
  }
}
