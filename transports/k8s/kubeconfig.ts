/**
 * ~/.kube/config, as client-go's clientcmd reads it (client-go tools/clientcmd/api/v1/types.go): the current
 * context's cluster (server, CA, insecure-skip-tls-verify) and user (bearer token or token file, client
 * certificate and key, as data or files). `KUBECONFIG` names the file (the first of its list); relative paths resolve
 * against the file's folder. The file is YAML as kubectl writes it (or JSON, which is YAML too): block mappings,
 * `- ` sequences and plain or quoted scalars, which {@linkcode parseYamlSubset} reads.
 *
 * @module
 */
import { RemoteError } from "../../plugins/mod.ts";

/** What a connection to the API server needs. */
export interface KubeEndpoint {
  server: string;
  /** the context's namespace, when a target names none */
  namespace?: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
  insecure: boolean;
}

type Yaml = string | Yaml[] | { [key: string]: Yaml };

/**
 * Reads the block YAML kubectl writes: indentation-nested mappings, `- ` sequences of mappings or scalars, and
 * plain, `'single'` or `"double"` quoted scalars. A JSON document is parsed as JSON.
 *
 * @throws {SyntaxError} for a line it cannot place
 */
export function parseYamlSubset(text: string): Yaml {
  if (/^\s*[{[]/.test(text)) return JSON.parse(text);
  const lines = text.split(/\r?\n/).map((l) => l.replace(/\s+#.*$/, "")).filter((l) =>
    l.trim() !== "" && !l.trimStart().startsWith("#") && l.trim() !== "---"
  );
  let at = 0;
  const indentOf = (l: string) => l.length - l.trimStart().length;
  const scalar = (v: string): string => {
    v = v.trim();
    if (v.startsWith('"')) return JSON.parse(v);
    if (v.startsWith("'")) return v.slice(1, -1).replaceAll("''", "'");
    return v;
  };
  const block = (indent: number): Yaml => {
    const first = lines[at];
    if (first.trimStart().startsWith("- ") || first.trim() === "-") {
      const list: Yaml[] = [];
      while (at < lines.length && indentOf(lines[at]) === indent && lines[at].trimStart().startsWith("-")) {
        const rest = lines[at].trimStart().slice(1);
        if (rest.trim() === "") {
          at++;
          list.push(block(indentOf(lines[at])));
        } else if (/^\s*[^'"][^:]*:(\s|$)/.test(rest)) {
          // `- key: value` starts a mapping whose keys sit at the column after "- "
          lines[at] = " ".repeat(indent + 1 + (rest.length - rest.trimStart().length)) + rest.trimStart();
          list.push(block(indentOf(lines[at])));
        } else {
          at++;
          list.push(scalar(rest));
        }
      }
      return list;
    }
    const map: { [key: string]: Yaml } = {};
    while (at < lines.length && indentOf(lines[at]) === indent) {
      const m = /^\s*("[^"]*"|'[^']*'|[^:]+?):(?:\s+(.*))?$/.exec(lines[at]);
      if (!m) throw new SyntaxError(`cannot read line ${JSON.stringify(lines[at].trim())}`);
      at++;
      const key = scalar(m[1]);
      if (m[2] !== undefined && m[2].trim() !== "") map[key] = m[2].trim() === "[]" ? [] : scalar(m[2]);
      else if (at < lines.length && indentOf(lines[at]) > indent) map[key] = block(indentOf(lines[at]));
      else if (at < lines.length && indentOf(lines[at]) === indent && lines[at].trimStart().startsWith("-")) {
        map[key] = block(indent); // kubectl writes a mapping's sequence at the key's own indent
      } else map[key] = "";
    }
    return map;
  };
  return lines.length === 0 ? {} : block(indentOf(lines[0]));
}

/**
 * The current context's endpoint from the kubeconfig at `path`.
 *
 * @throws {RemoteError} (config) no file, no current context, a context naming a missing cluster or user, or an
 * authentication kind this client does not speak (exec plugins, auth-provider, basic auth)
 */
export async function loadKubeconfig(path: string, context?: string): Promise<KubeEndpoint> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new RemoteError("config", `cannot read the kubeconfig ${path}`, {
      hint: "set KUBECONFIG to your cluster's kubeconfig, or create ~/.kube/config (kubectl config)",
    });
  }
  let doc: Yaml;
  try {
    doc = parseYamlSubset(text);
  } catch (e) {
    throw new RemoteError("config", `cannot read the kubeconfig ${path}: ${(e as Error).message}`, {
      hint: "check it with: kubectl config view",
    });
  }
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  const get = (v: Yaml | undefined, key: string): Yaml | undefined =>
    v && typeof v === "object" && !Array.isArray(v) ? v[key] : undefined;
  const str = (v: Yaml | undefined): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
  const named = (list: string, name: string | undefined, field: string) => {
    const items = get(doc, list);
    const hit = Array.isArray(items) ? items.find((i) => str(get(i, "name")) === name) : undefined;
    return get(hit, field);
  };
  const fail = (why: string): never => {
    throw new RemoteError("config", `kubeconfig ${path}: ${why}`, { hint: "check it with: kubectl config view" });
  };
  const contextName = context ?? str(get(doc, "current-context")) ?? fail("no current-context");
  const ctx = named("contexts", contextName, "context") ?? fail(`no context ${contextName}`);
  const cluster = named("clusters", str(get(ctx, "cluster")), "cluster") ??
    fail(`context ${contextName} has no cluster`);
  const user = named("users", str(get(ctx, "user")), "user");
  const file = async (dataKey: string, fileKey: string, from: Yaml | undefined) => {
    const data = str(get(from, dataKey));
    if (data) return new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
    const f = str(get(from, fileKey));
    return f ? await Deno.readTextFile(f.startsWith("/") ? f : `${dir}/${f}`) : undefined;
  };
  for (const unsupported of ["exec", "auth-provider", "username"]) {
    if (get(user, unsupported) !== undefined) {
      throw new RemoteError("config", `kubeconfig ${path}: the user of context ${contextName} uses ${unsupported}`, {
        hint:
          "remote speaks bearer tokens and client certificates; put a token (kubectl create token) in the kubeconfig",
      });
    }
  }
  const tokenFile = str(get(user, "tokenFile"));
  return {
    server: str(get(cluster, "server")) ?? fail(`the cluster of context ${contextName} has no server`),
    namespace: str(get(ctx, "namespace")),
    ca: await file("certificate-authority-data", "certificate-authority", cluster),
    cert: await file("client-certificate-data", "client-certificate", user),
    key: await file("client-key-data", "client-key", user),
    token: str(get(user, "token")) ?? (tokenFile ? (await Deno.readTextFile(tokenFile)).trim() : undefined),
    insecure: str(get(cluster, "insecure-skip-tls-verify")) === "true",
  };
}
