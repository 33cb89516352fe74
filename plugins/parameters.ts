/**
 * Typed parameters: a parameter is declared once, as data, and the same declaration reads the bound
 * values back with their types. A transport (or a core verb) declares its parameters with
 * {@linkcode declareParameters}, puts `specs` in its manifest, and reads `ctx.parameters` with `read`,
 * getting `params.port: number | undefined` rather than an `unknown` to cast.
 *
 * Every reader behaves alike: a value in its bound form is returned as is; the forms a value takes on
 * its way to a plugin out of process or through the session registry (a `uri` as its text, a
 * `credential` as a bare user name, an `enum` value in another case) are converted back; a value that
 * breaks its declaration (a URL that does not parse, an integer out of range) is a usage error naming
 * the option, and a value of another type altogether is a bug of the caller, a `TypeError`.
 *
 * @example Declaring and reading
 * ```ts
 * import { declareParameters } from "./parameters.ts";
 * const parameters = declareParameters([
 *   { name: "Port", short: "p", type: { kind: "int", min: 1, max: 65535 }, help: "port to connect to" },
 *   { name: "UseSSL", type: { kind: "switch" }, help: "use HTTPS" },
 * ]);
 * const params = parameters.read({ Port: 2222, UseSSL: true });
 * const port: number | undefined = params.port;
 * console.assert(port === 2222 && params.useSSL === true);
 * ```
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import { flagOf } from "./parameter_flag.ts";
import type { ParameterSpec, ParameterType } from "./types.ts";

/** The bound value of a `credential` parameter; `password` only once prompted for. */
export interface CredentialValue {
  user: string;
  password?: string;
}

/**
 * The bound value of a parameter of type `T`: `string` (string, guid), `number` (int; duration in
 * milliseconds), `boolean` (switch), `URL` (uri), `Record<string, string>` (map),
 * {@linkcode CredentialValue} (credential), one of the declared values (enum), `string[]` (list).
 */
export type ParameterValue<T extends ParameterType> = T extends { kind: "string" | "guid" } ? string
  : T extends { kind: "int" | "duration" } ? number
  : T extends { kind: "switch" } ? boolean
  : T extends { kind: "count" } ? number
  : T extends { kind: "uri" } ? URL
  : T extends { kind: "map" } ? Record<string, string>
  : T extends { kind: "credential" } ? CredentialValue
  : T extends { kind: "enum"; values: readonly (infer V extends string)[] } ? V
  : T extends { kind: "list" } ? string[]
  : never;

type IsUpper<C extends string> = C extends Lowercase<C> ? false : true;

/**
 * The key a parameter is read under: its PowerShell name in camel case, a leading acronym lowered
 * whole (`ThrottleLimit` → `throttleLimit`, `SSHTransport` → `sshTransport`, `UseSSL` → `useSSL`).
 */
export type ParameterKey<N extends string, Done extends string = ""> = N extends `${infer A}${infer B}${infer Rest}`
  ? IsUpper<A> extends true ? IsUpper<B> extends true ? ParameterKey<`${B}${Rest}`, `${Done}${Lowercase<A>}`>
    : Done extends "" ? Uncapitalize<N>
    : `${Done}${N}`
  : `${Done}${N}`
  : `${Done}${Lowercase<N>}`;

/** The values of the parameters `P`, read: each under its {@linkcode ParameterKey}, absent when not bound. */
export type ParameterValues<P extends readonly ParameterSpec[]> = {
  [S in P[number] as ParameterKey<S["name"]>]?: ParameterValue<S["type"]>;
};

/** Parameters declared once: their specs for a manifest or a verb, and the reader of their values. */
export interface DeclaredParameters<P extends readonly ParameterSpec[]> {
  /** the declarations, as a manifest's or a verb's `parameters` */
  readonly specs: P;
  /** the PowerShell names of `specs` */
  readonly names: ReadonlySet<string>;
  /**
   * The bound values of these parameters among `values` (keyed by PowerShell name), typed and keyed
   * in camel case; values of other parameters are left out.
   *
   * @throws {UsageError} when a value breaks its declaration (a `uri` that does not parse, an `int`
   * out of range, an `enum` value not declared)
   * @throws {TypeError} when a value has another type than declared (a bug of the caller)
   */
  read(values: Readonly<Record<string, unknown>>): ParameterValues<P>;
}

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
    case "count":
      return "a count (0 or more)";
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
    case "count":
      return "2";
    case "list":
    case "string":
      return "value";
  }
}

/**
 * The camel-case key of a parameter name, as {@linkcode ParameterKey} spells it in types.
 *
 * @example Keys
 * ```ts
 * import { parameterKey } from "./parameters.ts";
 * console.assert(parameterKey("SSHTransport") === "sshTransport" && parameterKey("SkipCACheck") === "skipCACheck");
 * ```
 */
export function parameterKey(name: string): string {
  return name.replace(/^[A-Z]+(?=[A-Z][a-z]|$)|^[A-Z]/, (lead) => lead.toLowerCase());
}

/**
 * Declares parameters once: the specs to publish and a typed reader of their bound values.
 *
 * @example A transport's parameters
 * ```ts
 * import { declareParameters } from "./parameters.ts";
 * export const parameters = declareParameters([
 *   { name: "Region", type: { kind: "string" }, help: "AWS region" },
 *   { name: "EndpointUrl", type: { kind: "uri" }, help: "endpoint URL" },
 * ]);
 * const { region, endpointUrl } = parameters.read({ Region: "eu-west-1" });
 * console.assert(region === "eu-west-1" && endpointUrl === undefined);
 * ```
 *
 * @throws {Error} when two parameters share a name or a key (a bug in the declaration)
 */
export function declareParameters<const P extends readonly ParameterSpec[]>(specs: P): DeclaredParameters<P> {
  const keys = new Map<string, string>();
  for (const spec of specs) {
    const key = parameterKey(spec.name);
    const other = keys.get(key);
    if (other !== undefined) throw new Error(`parameters ${other} and ${spec.name} are both read as ${key}`);
    keys.set(key, spec.name);
  }
  return {
    specs,
    names: new Set(specs.map((s) => s.name)),
    read(values) {
      const out: Record<string, unknown> = {};
      for (const spec of specs) {
        const value = values[spec.name];
        if (value === undefined || value === null) continue;
        out[parameterKey(spec.name)] = readValue(spec, value);
      }
      return out as ParameterValues<P>;
    },
  };
}

/** `value` as the bound value of `spec`, converted back from the forms it travels in. */
function readValue(spec: ParameterSpec, value: unknown): unknown {
  const type = spec.type;
  const wrongType = () =>
    new TypeError(
      `${spec.name} is declared as ${type.kind} but was given ${Array.isArray(value) ? "a list" : typeof value}`,
    );
  const broken = () => {
    const flag = `--${flagOf(spec)}`;
    const got = spec.secret ? "" : `, got ${JSON.stringify(String(value))}`;
    return new UsageError(`${flag} expects ${expectedOf(type)}${got}`, { hint: `e.g. ${flag} ${exampleOf(type)}` });
  };
  switch (type.kind) {
    case "string":
    case "guid":
      if (typeof value !== "string") throw wrongType();
      return value;
    case "int":
      if (typeof value !== "number") throw wrongType();
      if (!Number.isInteger(value)) throw broken();
      if ((type.min !== undefined && value < type.min) || (type.max !== undefined && value > type.max)) throw broken();
      return value;
    case "duration":
      if (typeof value !== "number") throw wrongType();
      if (!Number.isFinite(value) || value < 0) throw broken();
      return value;
    case "switch":
      if (typeof value !== "boolean") throw wrongType();
      return value;
    case "count":
      if (typeof value !== "number") throw wrongType();
      if (!Number.isInteger(value) || value < 0) throw broken();
      return value;
    case "uri":
      if (value instanceof URL) return value;
      if (typeof value !== "string") throw wrongType();
      if (!URL.canParse(value)) throw broken();
      return new URL(value);
    case "map":
      if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof URL) {
        throw wrongType();
      }
      if (!Object.values(value).every((v) => typeof v === "string")) throw wrongType();
      return value;
    case "credential":
      if (typeof value === "string") return { user: value };
      if (typeof value !== "object" || value === null || !("user" in value) || typeof value.user !== "string") {
        throw wrongType();
      }
      if ("password" in value && value.password !== undefined && typeof value.password !== "string") {
        throw wrongType();
      }
      return value;
    case "enum": {
      if (typeof value !== "string") throw wrongType();
      const found = type.values.find((v) => v.toLowerCase() === value.toLowerCase());
      if (found === undefined) throw broken();
      return found;
    }
    case "list":
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw wrongType();
      return value;
  }
}
