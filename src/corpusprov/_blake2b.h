/* BLAKE2b (RFC 7693) with a digest size and a personalisation, no key or salt: what
 * ``hashlib.blake2b(data, digest_size=n, person=p).digest()`` gives, without the hashlib
 * object a call (about 1 us a digest on the merge fast path, two digests a row). Included by
 * _bytescan.c; tests/test_canonical_native.py compares it with hashlib. */
#ifndef CORPUSPROV_BLAKE2B_H
#define CORPUSPROV_BLAKE2B_H

#include <stdint.h>
#include <string.h>

static const uint64_t B2B_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t B2B_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t
b2b_rotr(uint64_t x, int n)
{
    return (x >> n) | (x << (64 - n));
}

static inline uint64_t
b2b_load64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) {
        x = (x << 8) | p[i];
    }
    return x;
}

#define B2B_G(a, b, c, d, x, y)          \
    do {                                 \
        v[a] = v[a] + v[b] + (x);        \
        v[d] = b2b_rotr(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];              \
        v[b] = b2b_rotr(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);        \
        v[d] = b2b_rotr(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];              \
        v[b] = b2b_rotr(v[b] ^ v[c], 63); \
    } while (0)

static void
b2b_compress(uint64_t h[8], const unsigned char block[128], uint64_t counter, int last)
{
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) {
        m[i] = b2b_load64(block + 8 * i);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2B_IV[i];
    }
    v[12] ^= counter; /* the high word of the 128-bit counter stays 0: inputs are far below 2^64 bytes */
    if (last) {
        v[14] = ~v[14];
    }
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = B2B_SIGMA[r];
        B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) {
        h[i] ^= v[i] ^ v[i + 8];
    }
}

/* ``size`` (1-64) bytes of BLAKE2b digest of ``data`` with ``person`` (at most 16 bytes,
 * zero-padded as hashlib pads it) at ``out``. */
static void
blake2b_person(const unsigned char *data, size_t length, const unsigned char *person, size_t person_size,
               unsigned char *out, size_t size)
{
    uint64_t h[8];
    memcpy(h, B2B_IV, sizeof h);
    h[0] ^= 0x01010000ULL | (uint64_t)size;
    unsigned char padded[16] = {0};
    memcpy(padded, person, person_size > 16 ? 16 : person_size);
    h[6] ^= b2b_load64(padded);
    h[7] ^= b2b_load64(padded + 8);
    uint64_t counter = 0;
    while (length > 128) {
        counter += 128;
        b2b_compress(h, data, counter, 0);
        data += 128;
        length -= 128;
    }
    unsigned char block[128] = {0};
    memcpy(block, data, length);
    counter += length;
    b2b_compress(h, block, counter, 1);
    for (size_t i = 0; i < size; i++) {
        out[i] = (unsigned char)(h[i / 8] >> (8 * (i % 8)));
    }
}

#endif
