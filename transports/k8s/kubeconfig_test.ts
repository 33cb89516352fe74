import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseYamlSubset } from "./kubeconfig.ts";

Deno.test("parseYamlSubset() reads a kubeconfig as kubectl writes it", () => {
  const text = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: QUJD
    server: https://127.0.0.1:6443
  name: kind
contexts:
- context:
    cluster: kind
    namespace: "ns 1"
    user: admin
  name: kind
current-context: kind # the one in use
kind: Config
preferences: {}
users:
- name: admin
  user:
    token: 'it''s'
`;
  assertEquals(parseYamlSubset(text), {
    apiVersion: "v1",
    clusters: [{ cluster: { "certificate-authority-data": "QUJD", server: "https://127.0.0.1:6443" }, name: "kind" }],
    contexts: [{ context: { cluster: "kind", namespace: "ns 1", user: "admin" }, name: "kind" }],
    "current-context": "kind",
    kind: "Config",
    preferences: "{}",
    users: [{ name: "admin", user: { token: "it's" } }],
  });
});
