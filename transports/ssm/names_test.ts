import { strictEqual } from "node:assert/strict";
import { isTargetId } from "./names.ts";

Deno.test("isTargetId() takes instance, managed-node and ECS targets as IDs and anything else as a Name tag", () => {
  for (const id of ["i-0123abcd", "i-0123456789abcdef0", "mi-0123456789abcdef0", "ecs:cluster_task_container"]) {
    strictEqual(isTargetId(id), true, id);
  }
  for (const name of ["web-1", "i-web", "i-0123456789ABCDEF0", "mi-0123", "i-0123456789abcdef01", "instance"]) {
    strictEqual(isTargetId(name), false, name);
  }
});
