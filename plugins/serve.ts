/**
 * Runs a transport plugin module as an out-of-process `remote-transport-<name>` executable: the
 * prebuilt binary cannot import plugin files (denoland/deno#18327), so it spawns them and speaks
 * plugins/protocol.ts over stdio instead. One plugin source then works both in-process and out.
 *
 * @module
 */
import { RemoteError, TransportError, type TransportLayer } from "./errors.ts";
import {
  type Call,
  encodeMessage,
  exitStatusToWire,
  FrameDecoder,
  type Message,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  readMessages,
} from "./protocol.ts";
import type {
  Channel,
  DisconnectOptions,
  OpenContext,
  Prompter,
  PtyRequest,
  Transport,
  TransportManifest,
} from "./types.ts";
import { validateTransportModule } from "./validate.ts";

/** Where `serve()` reads and writes; defaults to the process's own stdio and arguments. */
export interface ServeOptions {
  args?: readonly string[];
  input?: ReadableStream<Uint8Array>;
  output?: WritableStream<Uint8Array>;
}

/**
 * Serves one session (one `call`) of `transport` over stdio, or prints its manifest with `--manifest`.
 * The core starts one process per session and ends it when the session ends.
 *
 * @param transport the plugin module itself (`import * as mod`) or an object with `manifest` and `open`
 * @throws {PluginError} when the module is not a valid transport
 *
 * @example The last line of a plugin module
 * ```ts ignore
 * import { serve } from "../../mod.ts";
 * if (import.meta.main) await serve({ manifest, open });
 * ```
 */
export async function serve(transport: Transport | Record<string, unknown>, options: ServeOptions = {}): Promise<void> {
  const plugin = validateTransportModule(transport, "serve()");
  // remote reads the manifest as declared, `*` marks and capabilities this SDK does not know included: a
  // newer remote may use them.
  const declared = (transport as { manifest: unknown }).manifest;
  const args = options.args ?? Deno.args;
  const output = options.output ?? Deno.stdout.writable;
  const writer = output.getWriter();
  const send = (m: Message) => writer.write(encodeMessage(m));
  try {
    if (args.includes("--manifest")) {
      await writer.write(new TextEncoder().encode(JSON.stringify(declared) + "\n"));
      return;
    }
    if (args.length > 0) {
      console.error(
        `remote-transport-${plugin.manifest.id}: a transport plugin for remote, run by remote itself\n` +
          `usage: remote-transport-${plugin.manifest.id} [--manifest]`,
      );
      return;
    }
    await serveSession(plugin, declared, options.input ?? Deno.stdin.readable, send);
  } finally {
    await writer.close().catch(() => {});
  }
}

async function serveSession(
  plugin: Transport,
  declared: unknown,
  input: ReadableStream<Uint8Array>,
  send: (m: Message) => Promise<void>,
): Promise<void> {
  // A Ctrl-C typed while the terminal is cooked reaches the whole process group; the core decides
  // what it means (a signal frame), so this process must not die of it.
  const ignore = () => {};
  const signals = Deno.build.os === "windows" ? [] : ["SIGINT", "SIGQUIT"] as const;
  for (const s of signals) Deno.addSignalListener(s, ignore);
  const aborter = new AbortController();
  const answers = new Map<number, PromiseWithResolvers<string>>();
  let channel: Channel | undefined;
  let stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let pumps: Promise<unknown> = Promise.resolve();
  let finished = false;

  await send({ type: "hello", protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, manifest: declared });
  const messages = readMessages(input, new FrameDecoder(plugin.manifest.id, "core"));
  try {
    const first = await messages.next();
    if (first.done || first.value.type !== "call") return;
    const call = first.value.call;
    let nextPrompt = 1;
    const prompt: Prompter = {
      interactive: call.interactive,
      async ask(question, options = {}) {
        const id = nextPrompt++;
        const waiter = Promise.withResolvers<string>();
        answers.set(id, waiter);
        await send({ type: "prompt", id, question, secret: options.secret === true, what: options.what });
        return await waiter.promise;
      },
    };
    const ctx: OpenContext = {
      target: call.target,
      parameters: parametersFromWire(plugin.manifest, call.parameters),
      signal: aborter.signal,
      prompt,
      notice: (line) => void send({ type: "notice", line }).catch(() => {}),
    };
    // Messages keep arriving while the call runs (answers to prompts, close).
    const control = (async () => {
      for await (const m of messages) {
        if (m.type === "answer") {
          const waiter = answers.get(m.id);
          answers.delete(m.id);
          if (m.error !== undefined) waiter?.reject(new RemoteError("usage", m.error));
          else waiter?.resolve(m.answer ?? "");
        } else if (m.type === "stdin") {
          if (stdin === undefined) continue;
          if (m.data.length === 0) await stdin.close().catch(() => {});
          else await stdin.write(m.data).catch(() => {});
        } else if (m.type === "resize") {
          await channel?.resize?.({ columns: m.columns, rows: m.rows });
        } else if (m.type === "signal") {
          await channel?.signal?.(m.name);
        } else if (m.type === "detach") {
          await channel?.detach?.();
        } else if (m.type === "close") {
          break;
        }
      }
    })().catch(() => {}).finally(() => {
      // The core left (close frame or EOF): end whatever is still running.
      if (!finished) aborter.abort(new Error("remote closed the plugin session"));
      for (const w of answers.values()) w.reject(new RemoteError("usage", "remote closed the plugin session"));
    });

    try {
      if (call.op === "open" || call.op === "attach") {
        channel = call.op === "open"
          ? await plugin.open(ctx, call.request!)
          : await plugin.sessions!.attach(ctx, call.name ?? "", call.options as { force: boolean; pty: PtyRequest });
        stdin = channel.stdin.getWriter();
        await send({ type: "opened" });
        const pump = async (stream: ReadableStream<Uint8Array>, type: "stdout" | "stderr") => {
          for await (const chunk of stream) await send({ type, data: chunk });
          await send({ type, data: new Uint8Array(0) });
        };
        pumps = Promise.all([pump(channel.stdout, "stdout"), pump(channel.stderr, "stderr")]);
        const status = await Promise.race([
          channel.exit,
          new Promise<never>((_, reject) =>
            aborter.signal.addEventListener("abort", () => reject(aborter.signal.reason))
          ),
        ]);
        await pumps;
        finished = true;
        await send({ type: "exit", status: exitStatusToWire(status) });
      } else {
        const value = await callSessionHost(plugin, ctx, call);
        finished = true;
        await send({ type: "result", value });
      }
    } catch (e) {
      finished = true;
      await send(errorMessage(e)).catch(() => {});
    } finally {
      if (channel !== undefined) await Promise.resolve(channel[Symbol.asyncDispose]()).catch(() => {});
      aborter.abort(new Error("session over"));
      await pumps.catch(() => {});
      void control;
    }
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, ignore);
    // Not awaited: a read may be pending until remote closes our stdin, which it does next.
    void messages.return(undefined).catch(() => {});
  }
}

/**
 * The bound values as the core holds them in-process: JSON carries a `uri` value (a `URL`) as its
 * text, so it becomes a `URL` again, and a plugin sees one type whether it runs in-process or not.
 */
function parametersFromWire(manifest: TransportManifest, parameters: Record<string, unknown>): Record<string, unknown> {
  const out = { ...parameters };
  for (const p of manifest.parameters) {
    const value = out[p.name];
    if (p.type.kind === "uri" && typeof value === "string" && URL.canParse(value)) out[p.name] = new URL(value);
  }
  return out;
}

async function callSessionHost(plugin: Transport, ctx: OpenContext, call: Call): Promise<unknown> {
  const host = plugin.sessions;
  if (host === undefined) throw new TransportError(`this transport hosts no sessions`, { layer: "config" });
  const name = call.name ?? "";
  const options = call.options ?? {};
  switch (call.op) {
    case "list":
      return await host.list(ctx);
    case "create":
      return await host.create(ctx, name, options as { instanceId: string; pty: PtyRequest });
    case "disconnect":
      await host.disconnect(ctx, name, options as DisconnectOptions);
      return null;
    case "receive": {
      const bytes = await host.receive(ctx, name);
      let text = "";
      for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(text);
    }
    case "remove":
      await host.remove(ctx, name);
      return null;
    default:
      throw new TransportError(`unknown call ${call.op}`, { layer: "protocol" });
  }
}

function errorMessage(e: unknown): Message {
  if (e instanceof RemoteError) {
    return {
      type: "error",
      message: e.message,
      hint: e.hint,
      code: e.code,
      layer: e instanceof TransportError ? e.layer satisfies TransportLayer : undefined,
    };
  }
  return { type: "error", message: e instanceof Error ? e.message : String(e) };
}
