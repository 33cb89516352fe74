/**
 * The stream a jump host forwards to the next hop, made safe to run a second ssh2 client over.
 *
 * ssh2's chacha20-poly1305 encrypter keeps its nonce in one module-level buffer and hands out the
 * encrypted length, body and MAC in three writes. Over a forwarded channel each write re-enters the
 * outer connection's encrypter synchronously, which rewrites that buffer halfway through the inner
 * packet, so the next hop sees a corrupt packet and hangs up. Deferring every write (and read) to its
 * own microtask keeps the two encrypters from interleaving.
 *
 * @module
 */
import { Duplex } from "node:stream";
import type { DialStream } from "../../plugins/mod.ts";

/** Wraps `inner` so no write or read reaches it from inside another ssh2 packet operation. */
export function decoupledStream(inner: Duplex): Duplex {
  const outer = new Duplex({
    write(chunk: Uint8Array, _encoding, callback) {
      queueMicrotask(() => {
        if (inner.write(chunk)) callback();
        else inner.once("drain", () => callback());
      });
    },
    final(callback) {
      queueMicrotask(() => {
        inner.end();
        callback();
      });
    },
    read() {
      inner.resume();
    },
    destroy(err, callback) {
      inner.destroy(err ?? undefined);
      callback(err);
    },
  });
  inner.on("data", (chunk: Uint8Array) => {
    queueMicrotask(() => {
      if (!outer.push(chunk)) inner.pause();
    });
  });
  inner.once("end", () => queueMicrotask(() => outer.push(null)));
  inner.once("close", () => queueMicrotask(() => outer.destroy()));
  inner.once("error", (err: Error) => outer.destroy(err));
  return outer;
}

/**
 * The stream `OpenContext.dial` gave (`--via`: another transport's connection) as the Node stream ssh2 runs a
 * connection over, decoupled as a jump host's is (the via may itself be ssh2).
 */
export function dialedSocket(stream: DialStream): Duplex {
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  let reading = false;
  // A broken stream closes the socket without an error event: ssh2 reports the close as a second error ("Connection
  // lost before handshake") that nobody would hear; the cause is kept for the handshake's error (dialFailure)
  const fail = (err: unknown) => {
    if (!failures.has(outer)) failures.set(outer, err instanceof Error ? err : new Error(String(err)));
    socket.destroy();
  };
  const socket = new Duplex({
    write(chunk: Uint8Array, _encoding, callback) {
      writer.write(chunk).then(() => callback(), (err) => {
        fail(err);
        callback();
      });
    },
    final(callback) {
      writer.close().then(() => callback(), () => callback());
    },
    read() {
      if (reading) return;
      reading = true;
      void pump();
    },
    destroy(err, callback) {
      reader.cancel().catch(() => {});
      Promise.resolve(stream[Symbol.asyncDispose]()).catch(() => {});
      callback(err);
    },
  });
  const pump = async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return void socket.push(null);
        if (!socket.push(value)) break;
      }
      reading = false;
    } catch (err) {
      fail(err);
    }
  };
  const outer = decoupledStream(socket);
  return outer;
}

const failures = new WeakMap<Duplex, Error>();

/** Why a stream from {@linkcode dialedSocket} broke (the via transport's error), if it did. */
export function dialFailure(socket: Duplex): Error | undefined {
  return failures.get(socket);
}
