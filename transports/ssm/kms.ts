/**
 * KMS encryption of a session's data channel, when the session document asks for it (the agent's
 * `KMSEncryption` handshake action). Facts from aws/session-manager-plugin `src/encryption`
 * (`encrypter.go`, `kmsservice.go`) and `src/datachannel/streaming.go`, and aws/amazon-ssm-agent
 * `agent/session/crypto/blockcipher.go` and `datachannel.go`:
 *
 * - The client calls kms:GenerateDataKey for the agent's KMSKeyId, 64 bytes, with the encryption context
 *   `aws:ssm:SessionId`, `aws:ssm:TargetId`, and `aws:ssm:RandomChallenge` (the handshake's Challenge) when
 *   the agent sent one; it returns the CiphertextBlob as `KMSCipherTextKey` and, with the challenge,
 *   `ChallengeAcknowledgement: true`. The agent decrypts the blob with kms:Decrypt and the same context.
 * - Bytes 0–31 of the plaintext key are the agent's encryption key (the client decrypts with them),
 *   bytes 32–63 the client's encryption key.
 * - AES-256-GCM, a random 12-byte nonce in front, the 16-byte tag at the end, no associated data. The
 *   client encrypts its Output payloads (not Size or Flag); the agent encrypts Output, StdErr and ExitCode.
 * - The agent then sends an encryption challenge (random bytes under its key); the client decrypts it
 *   and sends it back under its own key.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { TransportError } from "../../plugins/mod.ts";
import { clientOptions, type ControlPlaneConfig, sdkError } from "./control_plane.ts";
import { loadAwsSdk } from "./sdk_loader.ts";

/** The size of the data key the client asks KMS for (`KMSKeySizeInBytes`). */
export const KMS_KEY_BYTES = 64;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** The two directions of one session's encryption. */
export class SessionCipher {
  #encryptKey: Uint8Array;
  #decryptKey: Uint8Array;

  /** `plaintextKey`: the 64 bytes KMS returned */
  constructor(plaintextKey: Uint8Array) {
    if (plaintextKey.length !== KMS_KEY_BYTES) {
      throw new TransportError(`KMS returned a ${plaintextKey.length}-byte data key, not ${KMS_KEY_BYTES}`, {
        layer: "protocol",
      });
    }
    this.#decryptKey = plaintextKey.slice(0, 32);
    this.#encryptKey = plaintextKey.slice(32, 64);
  }

  /** nonce ‖ ciphertext ‖ tag under the client's key */
  encrypt(plain: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv("aes-256-gcm", this.#encryptKey, nonce);
    const body = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    const out = new Uint8Array(NONCE_BYTES + body.length);
    out.set(nonce);
    out.set(body, NONCE_BYTES);
    return out;
  }

  /**
   * The plaintext of what the agent encrypted under its key.
   *
   * @throws {TransportError} `protocol` when it does not decrypt (another key, or damaged)
   */
  decrypt(sealed: Uint8Array): Uint8Array {
    if (sealed.length < NONCE_BYTES + TAG_BYTES) throw decryptError();
    try {
      const d = createDecipheriv("aes-256-gcm", this.#decryptKey, sealed.subarray(0, NONCE_BYTES));
      d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      return new Uint8Array(
        Buffer.concat([d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), d.final()]),
      );
    } catch {
      throw decryptError();
    }
  }
}

function decryptError(): TransportError {
  return new TransportError("the SSM agent's data does not decrypt with the session's KMS data key", {
    layer: "protocol",
    hint: "the agent and remote hold different keys; start the session again, and check the agent's KMS access",
  });
}

/** The encryption context of a session's data key. */
export function encryptionContext(sessionId: string, target: string, challenge?: string): Record<string, string> {
  return {
    "aws:ssm:SessionId": sessionId,
    "aws:ssm:TargetId": target,
    ...(challenge ? { "aws:ssm:RandomChallenge": challenge } : {}),
  };
}

/** KMS is reached as SSM is, with its own endpoint (`AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, the region's). */
function kmsOptions(config: ControlPlaneConfig): Record<string, unknown> {
  const { endpoint: _ssmOnly, ...rest } = config;
  return clientOptions(rest);
}

/**
 * kms:GenerateDataKey for the session: the blob to hand to the agent and the cipher.
 *
 * @throws {TransportError} mapped from KMS's error (a key that does not exist, access denied, …)
 */
export async function generateSessionKey(
  config: ControlPlaneConfig,
  keyId: string,
  context: Record<string, string>,
): Promise<{ cipherTextKey: Uint8Array; cipher: SessionCipher }> {
  const sdk = await loadAwsSdk();
  const client = new sdk.KMSClient(kmsOptions(config));
  try {
    const out = await client.send(
      new sdk.GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: KMS_KEY_BYTES, EncryptionContext: context }),
      { abortSignal: config.signal },
    );
    if (!out.CiphertextBlob || !out.Plaintext) {
      throw new TransportError("AWS KMS GenerateDataKey returned no key", { layer: "protocol" });
    }
    return { cipherTextKey: out.CiphertextBlob, cipher: new SessionCipher(out.Plaintext) };
  } catch (cause) {
    throw kmsError("GenerateDataKey", cause, keyId);
  } finally {
    client.destroy();
  }
}

/**
 * kms:Decrypt of a session's data key, to continue a kept encrypted session in a later run (the
 * plaintext key is never written to disk).
 *
 * @throws {TransportError} mapped from KMS's error
 */
export async function decryptSessionKey(
  config: ControlPlaneConfig,
  keyId: string,
  cipherTextKey: Uint8Array,
  context: Record<string, string>,
): Promise<SessionCipher> {
  const sdk = await loadAwsSdk();
  const client = new sdk.KMSClient(kmsOptions(config));
  try {
    const out = await client.send(
      new sdk.DecryptCommand({ KeyId: keyId, CiphertextBlob: cipherTextKey, EncryptionContext: context }),
      { abortSignal: config.signal },
    );
    if (!out.Plaintext) throw new TransportError("AWS KMS Decrypt returned no key", { layer: "protocol" });
    return new SessionCipher(out.Plaintext);
  } catch (cause) {
    throw kmsError("Decrypt", cause, keyId);
  } finally {
    client.destroy();
  }
}

function kmsError(operation: string, cause: unknown, keyId: string): Error {
  if (cause instanceof TransportError) return cause;
  const error = sdkError("KMS", operation, cause);
  const name = (cause as { name?: string })?.name ?? "";
  if (/NotFound|Disabled|KMSInvalidState|InvalidKeyUsage/.test(name)) {
    return new TransportError(`${error.message} (the session's KMS key ${keyId})`, {
      layer: "server",
      hint: "the Session Manager preferences name this key (kmsKeyId); check that it exists, is enabled and is " +
        "in this region",
      cause,
    });
  }
  return error;
}
