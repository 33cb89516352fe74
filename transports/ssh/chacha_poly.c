/*
 * ChaCha20 and Poly1305 for chacha20-poly1305@openssh.com, compiled to WebAssembly.
 *
 * Sources of the algorithms: RFC 8439 (ChaCha20 §2.3-2.4, Poly1305 §2.5, the one-time key §2.6) and
 * OpenSSH's PROTOCOL.chacha20poly1305 (the SSH packet construction: a 64-byte key, K_2 = bytes 0-31
 * for the payload and the Poly1305 key, K_1 = bytes 32-63 for the packet length; the nonce is the
 * packet sequence number as a 64-bit big-endian integer, with ChaCha20's original 64-bit counter).
 *
 * The bulk ChaCha20 of each packet runs in node:crypto (OpenSSL's vectorised code: 2.4 GB/s here against
 * 1.1 GB/s for a 4-lane SIMD version of this file's, measured in the transfer's CPU profile); this module
 * does what node:crypto cannot: Poly1305, and the one keystream block that masks the length field.
 *
 * Regenerate transports/ssh/chacha_poly_wasm.ts with `deno run -A scripts/build_wasm.ts` after any change
 * here; transports/ssh/chacha_poly_test.ts checks the two agree.
 *
 * Freestanding: no libc. Built with clang --target=wasm32 -O3. Memory layout is owned by the
 * JavaScript side (chacha_poly.ts): it passes offsets into the exported memory.
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

#define EXPORT(name) __attribute__((export_name(#name)))

static inline u32 load32(const u8 *p) {
  u32 v;
  __builtin_memcpy(&v, p, 4); /* wasm is little-endian */
  return v;
}

static inline void store32(u8 *p, u32 v) { __builtin_memcpy(p, &v, 4); }

/* ---- ChaCha20 ---------------------------------------------------------------------------------- */

#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define QR(a, b, c, d)                                                                                 \
  a += b; d ^= a; d = ROTL(d, 16);                                                                     \
  c += d; b ^= c; b = ROTL(b, 12);                                                                     \
  a += b; d ^= a; d = ROTL(d, 8);                                                                      \
  c += d; b ^= c; b = ROTL(b, 7);

/* The 20 rounds: column rounds then diagonal rounds, ten times (RFC 8439 §2.3). */
#define ROUNDS(x)                                                                                      \
  for (int i = 0; i < 10; i++) {                                                                       \
    QR(x[0], x[4], x[8], x[12]) QR(x[1], x[5], x[9], x[13])                                            \
    QR(x[2], x[6], x[10], x[14]) QR(x[3], x[7], x[11], x[15])                                          \
    QR(x[0], x[5], x[10], x[15]) QR(x[1], x[6], x[11], x[12])                                          \
    QR(x[2], x[7], x[8], x[13]) QR(x[3], x[4], x[9], x[14])                                            \
  }

/* One 64-byte keystream block of `state`, XORed into `data` (len <= 64). */
static void chacha_block_xor(const u32 state[16], u8 *data, u32 len) {
  u32 x[16];
  for (int i = 0; i < 16; i++) x[i] = state[i];
  ROUNDS(x)
  u8 ks[64];
  for (int i = 0; i < 16; i++) store32(ks + 4 * i, x[i] + state[i]);
  for (u32 i = 0; i < len; i++) data[i] ^= ks[i];
}

/*
 * XORs the keystream of `key` (32 bytes) into `data`, starting at block `counter`. Words 13-15 of the
 * state are given as is: RFC 8439 puts its 96-bit nonce there; OpenSSH's layout is word 13 = the high
 * half of the 64-bit counter (0 here), words 14-15 = the 64-bit nonce.
 */
static void chacha20_xor(const u8 *key, u32 counter, u32 w13, u32 w14, u32 w15, u8 *data, u32 len) {
  u32 s[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574}; /* "expand 32-byte k" */
  for (int i = 0; i < 8; i++) s[4 + i] = load32(key + 4 * i);
  s[12] = counter;
  s[13] = w13;
  s[14] = w14;
  s[15] = w15;
  while (len > 0) {
    u32 n = len < 64 ? len : 64;
    chacha_block_xor(s, data, n);
    s[12] += 1;
    data += n;
    len -= n;
  }
}

EXPORT(chacha20)
void chacha20(const u8 *key, u32 counter, u32 w13, u32 w14, u32 w15, u8 *data, u32 len) {
  chacha20_xor(key, counter, w13, w14, w15, data, len);
}

/* ---- Poly1305 ---------------------------------------------------------------------------------- */

/*
 * The accumulator and r as five 26-bit limbs, so each product fits a 64-bit multiply (wasm has no
 * 64x64->128 one). Reduction uses 2^130 = 5 (mod 2^130 - 5).
 */
#define M26 0x3ffffffu

static void poly1305_mac(const u8 *key, const u8 *msg, u32 len, u8 *out) {
  u8 rb[16];
  for (int i = 0; i < 16; i++) rb[i] = key[i];
  /* clamp r (RFC 8439 §2.5): r &= 0x0ffffffc0ffffffc0ffffffc0fffffff */
  rb[3] &= 15; rb[7] &= 15; rb[11] &= 15; rb[15] &= 15;
  rb[4] &= 252; rb[8] &= 252; rb[12] &= 252;
  const u64 r0 = load32(rb) & M26, r1 = (load32(rb + 3) >> 2) & M26, r2 = (load32(rb + 6) >> 4) & M26,
            r3 = (load32(rb + 9) >> 6) & M26, r4 = load32(rb + 12) >> 8;
  const u64 s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  u64 h0 = 0, h1 = 0, h2 = 0, h3 = 0, h4 = 0;
  u8 last[16];
  while (len > 0) {
    const u8 *m = msg;
    u32 hibit = 1u << 24; /* the 2^128 bit appended to each full block */
    if (len < 16) {
      for (u32 i = 0; i < 16; i++) last[i] = i < len ? msg[i] : (i == len ? 1 : 0);
      m = last;
      hibit = 0;
      len = 16;
    }
    h0 += load32(m) & M26;
    h1 += (load32(m + 3) >> 2) & M26;
    h2 += (load32(m + 6) >> 4) & M26;
    h3 += (load32(m + 9) >> 6) & M26;
    h4 += (load32(m + 12) >> 8) | hibit;
    u64 d0 = h0 * r0 + h1 * s4 + h2 * s3 + h3 * s2 + h4 * s1;
    u64 d1 = h0 * r1 + h1 * r0 + h2 * s4 + h3 * s3 + h4 * s2;
    u64 d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s4 + h4 * s3;
    u64 d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s4;
    u64 d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;
    u64 c;
    c = d0 >> 26; h0 = d0 & M26; d1 += c;
    c = d1 >> 26; h1 = d1 & M26; d2 += c;
    c = d2 >> 26; h2 = d2 & M26; d3 += c;
    c = d3 >> 26; h3 = d3 & M26; d4 += c;
    c = d4 >> 26; h4 = d4 & M26; h0 += c * 5;
    c = h0 >> 26; h0 &= M26; h1 += c;
    msg += 16;
    len -= 16;
  }
  /* carry fully, then subtract p if h >= p, in constant time */
  u64 c;
  c = h1 >> 26; h1 &= M26; h2 += c;
  c = h2 >> 26; h2 &= M26; h3 += c;
  c = h3 >> 26; h3 &= M26; h4 += c;
  c = h4 >> 26; h4 &= M26; h0 += c * 5;
  c = h0 >> 26; h0 &= M26; h1 += c;
  u32 g0 = (u32)h0 + 5, g1, g2, g3, g4;
  g1 = (u32)h1 + (g0 >> 26); g0 &= M26;
  g2 = (u32)h2 + (g1 >> 26); g1 &= M26;
  g3 = (u32)h3 + (g2 >> 26); g2 &= M26;
  g4 = (u32)h4 + (g3 >> 26) - (1u << 26); g3 &= M26;
  u32 take_g = (g4 >> 31) - 1; /* all ones when h + 5 - 2^130 did not go negative */
  u32 f0 = ((u32)h0 & ~take_g) | (g0 & take_g), f1 = ((u32)h1 & ~take_g) | (g1 & take_g),
      f2 = ((u32)h2 & ~take_g) | (g2 & take_g), f3 = ((u32)h3 & ~take_g) | (g3 & take_g),
      f4 = ((u32)h4 & ~take_g) | (g4 & take_g);
  u32 w0 = f0 | (f1 << 26), w1 = (f1 >> 6) | (f2 << 20), w2 = (f2 >> 12) | (f3 << 14), w3 = (f3 >> 18) | (f4 << 8);
  /* tag = (h + s) mod 2^128 */
  u64 t = (u64)w0 + load32(key + 16);
  store32(out, (u32)t);
  t = (u64)w1 + load32(key + 20) + (t >> 32);
  store32(out + 4, (u32)t);
  t = (u64)w2 + load32(key + 24) + (t >> 32);
  store32(out + 8, (u32)t);
  t = (u64)w3 + load32(key + 28) + (t >> 32);
  store32(out + 12, (u32)t);
}

EXPORT(poly1305)
void poly1305(const u8 *key, const u8 *msg, u32 len, u8 *out) { poly1305_mac(key, msg, len, out); }

/* ---- chacha20-poly1305@openssh.com ------------------------------------------------------------- */

/*
 * The mask for packet `seqno`'s length field: the first four keystream bytes of K_1 (`key`, 32 bytes),
 * read big-endian as the field is. The sealed field is the length XOR this mask.
 */
EXPORT(ssh_length_mask)
u32 ssh_length_mask(const u8 *key, u32 seqno) {
  u8 b[4] = {0, 0, 0, 0};
  chacha20_xor(key, 0, 0, 0, __builtin_bswap32(seqno), b, 4);
  return ((u32)b[0] << 24) | ((u32)b[1] << 16) | ((u32)b[2] << 8) | b[3];
}

/*
 * The tag of a sealed packet: Poly1305 under `poly_key` (K_2's first keystream block for the packet)
 * over the sealed length and body, `pkt[0 .. 4 + len]`, written to `pkt + 4 + len`.
 */
EXPORT(ssh_tag)
void ssh_tag(const u8 *poly_key, u8 *pkt, u32 len) { poly1305_mac(poly_key, pkt, 4 + len, pkt + 4 + len); }

/* 1 when the 16 bytes after `pkt[0 .. 4 + len]` are its tag under `poly_key`, compared in constant time. */
EXPORT(ssh_tag_ok)
u32 ssh_tag_ok(const u8 *poly_key, const u8 *pkt, u32 len) {
  u8 tag[16];
  poly1305_mac(poly_key, pkt, 4 + len, tag);
  u32 diff = 0;
  for (int i = 0; i < 16; i++) diff |= tag[i] ^ pkt[4 + len + i];
  return ((diff - 1) >> 8) & 1;
}
