/**
 * The algorithm lists offered to servers, in preference order.
 *
 * ssh2's native crypto addon cannot load under Deno; chacha20-poly1305 runs through
 * ssh2_chacha_poly.ts (node:crypto ChaCha20, WebAssembly Poly1305) and is the fastest cipher here, so it
 * comes first (docs/ssh.md, BENCHMARKS.md). The key
 * exchange prefers curve25519-sha256 (RFC 8731), as OpenSSH does after its post-quantum hybrids, which
 * ssh2 lacks.
 *
 * @module
 */

/** Key exchange methods, best first. */
export const KEX: readonly string[] = [
  "curve25519-sha256",
  "curve25519-sha256@libssh.org",
  "ecdh-sha2-nistp256",
  "ecdh-sha2-nistp384",
  "ecdh-sha2-nistp521",
  "diffie-hellman-group-exchange-sha256",
  "diffie-hellman-group16-sha512",
  "diffie-hellman-group18-sha512",
  "diffie-hellman-group14-sha256",
];

/** Ciphers, best first under Deno's pure-JS crypto path. */
export const CIPHERS: readonly string[] = [
  "chacha20-poly1305@openssh.com",
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
  "aes128-ctr",
  "aes192-ctr",
  "aes256-ctr",
];

/** MACs for the ciphers that need one (encrypt-then-MAC first, as OpenSSH). */
export const MACS: readonly string[] = [
  "hmac-sha2-256-etm@openssh.com",
  "hmac-sha2-512-etm@openssh.com",
  "hmac-sha2-256",
  "hmac-sha2-512",
];

/** Host key algorithms; SHA-1 `ssh-rsa` signatures are left out, as OpenSSH 8.8+ does. */
export const HOST_KEYS: readonly string[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
];

/** {@linkcode HOST_KEYS} with the algorithms producing keys of `keyTypes` (known_hosts names) moved first. */
export function hostKeyAlgorithmsPreferring(keyTypes: readonly string[]): string[] {
  const wanted = (a: string) => keyTypes.includes(a.startsWith("rsa-sha2-") ? "ssh-rsa" : a);
  return [...HOST_KEYS.filter(wanted), ...HOST_KEYS.filter((a) => !wanted(a))];
}
