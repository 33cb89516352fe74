/**
 * The command line cliexec runs: the user's CLI template with its placeholders filled in, then the remote
 * command. Pure (no I/O), so it is tested offline (command_line_test.ts).
 *
 * @module
 */
import { TransportError } from "../../mod.ts";

/** The values a template's placeholders take; an empty or absent one drops its word. */
export interface TemplateValues {
  instance: string;
  /** `-t` when a PTY was asked for, else empty */
  tty: string;
  namespace?: string;
  container?: string;
  user?: string;
}

/** A name the CLI gets as one argument: no leading `-` (it would read as an option), no spaces. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$/;

/** An environment variable's name, as POSIX's `env` takes it. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Splits `template` at white space and fills in `{instance}`, `{tty}`, `{namespace}`, `{container}` and
 * `{user}`. A word whose placeholders are all empty is left out, so `--namespace={namespace}` disappears
 * when no namespace was given and `{tty}` when no PTY was asked for. There is no quoting: each word is
 * one argument of the CLI, passed without a shell.
 *
 * @throws {TransportError} (layer `config`, exit 230) for an empty template, an unknown placeholder or a
 * value that is not a plain name
 *
 * @example kubectl with a PTY, no namespace
 * ```ts
 * import { expandTemplate } from "./command_line.ts";
 * const argv = expandTemplate("kubectl exec -i {tty} --namespace={namespace} {instance} --", {
 *   instance: "web1",
 *   tty: "-t",
 * });
 * console.assert(argv.join(" ") === "kubectl exec -i -t web1 --");
 * ```
 */
export function expandTemplate(template: string, values: TemplateValues): string[] {
  const fields: Record<string, string> = {
    instance: values.instance,
    tty: values.tty,
    namespace: values.namespace ?? "",
    container: values.container ?? "",
    user: values.user ?? "",
  };
  for (const name of ["instance", "namespace", "container", "user"]) {
    const value = fields[name];
    if (value !== "" && !NAME.test(value)) {
      throw new TransportError(`${JSON.stringify(value)} is not a valid ${name} name`, {
        layer: "config",
        hint: "use letters, digits and _ . : @ -, not starting with -",
      });
    }
    // a value the template has no place for would be dropped without a word: say so instead
    if (name !== "instance" && value !== "" && !template.includes(`{${name}}`)) {
      throw new TransportError(`a ${name} was given but the exec CLI has no {${name}}`, {
        layer: "config",
        hint: `drop the ${name}, or put {${name}} in --exec-cli`,
      });
    }
  }
  const words = template.trim().split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) {
    throw new TransportError("the exec CLI is empty", {
      layer: "config",
      hint: "name one, e.g. --exec-cli 'kubectl exec -i {tty} {instance} --'",
    });
  }
  const argv: string[] = [];
  for (const word of words) {
    let filled = 0;
    let empty = 0;
    const out = word.replace(/\{([^{}]*)\}/g, (_, name: string) => {
      if (!(name in fields)) {
        throw new TransportError(`unknown placeholder {${name}} in the exec CLI`, {
          layer: "config",
          hint: "use {instance}, {tty}, {namespace}, {container} or {user}",
        });
      }
      if (fields[name] === "") empty++;
      else filled++;
      return fields[name];
    });
    if (empty > 0 && filled === 0) continue;
    argv.push(out);
  }
  return argv;
}

/**
 * The part run inside: `env` sets the variables (`env` is POSIX, so every container with a shell has it),
 * then `sh -c command`, or `sh` for a shell. Arguments travel as they are, without quoting, because every
 * exec CLI passes them on as an argument vector.
 *
 * @throws {TransportError} (layer `config`) for an environment variable name `env` cannot take
 *
 * @example
 * ```ts
 * import { remoteArgv } from "./command_line.ts";
 * console.assert(remoteArgv({ TERM: "xterm" }, "uname -a").join(" ") === "env TERM=xterm sh -c uname -a");
 * ```
 */
export function remoteArgv(env: Readonly<Record<string, string>>, command?: string): string[] {
  const assignments = Object.entries(env).map(([name, value]) => {
    if (!ENV_NAME.test(name)) {
      throw new TransportError(`${JSON.stringify(name)} is not an environment variable name`, { layer: "config" });
    }
    return `${name}=${value}`;
  });
  return ["env", ...assignments, "sh", ...(command === undefined ? [] : ["-c", command])];
}
