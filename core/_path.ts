/**
 * The few path operations a run needs before it knows what it will do, without `node:path`: the first
 * `node:` import starts Deno's Node compatibility layer, which costs every run of remote 6–17 ms
 * (BENCHMARKS.md, reused first byte). POSIX rules, and Windows' separators and drive letters there.
 *
 * @module
 */

const WINDOWS = Deno.build.os === "windows";

/** The separator of path segments: `/`, or `\` on Windows. */
export const SEPARATOR: string = WINDOWS ? "\\" : "/";

/** The separator of PATH's entries: `:`, or `;` on Windows. */
export const DELIMITER: string = WINDOWS ? ";" : ":";

const SEPARATORS = WINDOWS ? /[\\/]+/ : /\/+/;

/** The root `path` starts with (`/`, `C:\`, `\`), or `""` when it is relative. */
function rootOf(path: string): string {
  if (!WINDOWS) return path.startsWith("/") ? "/" : "";
  const m = /^([A-Za-z]:)?[\\/]/.exec(path);
  return m ? `${m[1] ?? ""}\\` : "";
}

/** Whether `path` is absolute. */
export function isAbsolute(path: string): boolean {
  return rootOf(path) !== "";
}

/** `path` with `.` and `..` segments and doubled separators removed; `.` for nothing. */
export function normalize(path: string): string {
  const root = rootOf(path);
  const segments: string[] = [];
  for (const segment of path.slice(root.length).split(SEPARATORS)) {
    if (segment === "" || segment === ".") continue;
    if (segment === ".." && segments.length > 0 && segments[segments.length - 1] !== "..") segments.pop();
    else if (segment !== ".." || root === "") segments.push(segment);
  }
  return root + segments.join(SEPARATOR) || (root === "" ? "." : root);
}

/** The segments joined and normalized. */
export function join(...parts: string[]): string {
  return normalize(parts.filter((p) => p !== "").join(SEPARATOR));
}

/** The absolute path of `parts` read from the right, relative ones from the working directory. */
export function resolve(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !isAbsolute(path); i--) {
    if (parts[i] !== "") path = path === "" ? parts[i] : `${parts[i]}${SEPARATOR}${path}`;
  }
  return normalize(isAbsolute(path) ? path : `${Deno.cwd()}${SEPARATOR}${path}`);
}

/** The folder `path` names a file in: `/a` for `/a/b`, `.` for a bare name. */
export function dirname(path: string): string {
  const root = rootOf(path);
  const rest = path.slice(root.length).replace(WINDOWS ? /[\\/]+$/ : /\/+$/, "");
  const cut = Math.max(rest.lastIndexOf("/"), WINDOWS ? rest.lastIndexOf("\\") : -1);
  if (cut < 0) return root || ".";
  return root + rest.slice(0, cut).replace(WINDOWS ? /[\\/]+$/ : /\/+$/, "") || root || ".";
}
