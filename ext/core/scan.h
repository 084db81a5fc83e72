/* Wide scans for the escaping and decoding loops (ext/core/escaping.pxi,
 * json_decode.pxi): find the first byte of a run that needs a look, 16 bytes
 * at a time with SSE2 (every x86-64), 8 at a time elsewhere (SWAR).  Long
 * plain strings are then copied with one memcpy.  Written in C because
 * Cython has no vector types; the rules themselves stay in the .pxi files.
 */
#ifndef EVENTS_AUDIT_SCAN_H
#define EVENTS_AUDIT_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define EA_SSE2 1
#endif

/* First index >= i and < n whose byte is < 0x20, >= 0x80 or one of c1..c5
 * (repeat a byte to use fewer); n when there is none. */
static inline size_t ea_scan_plain(const uint8_t *s, size_t i, size_t n, uint8_t c1, uint8_t c2,
                                   uint8_t c3, uint8_t c4, uint8_t c5)
{
#ifdef EA_SSE2
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i v1 = _mm_set1_epi8((char)c1), v2 = _mm_set1_epi8((char)c2);
    const __m128i v3 = _mm_set1_epi8((char)c3), v4 = _mm_set1_epi8((char)c4);
    const __m128i v5 = _mm_set1_epi8((char)c5);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        /* signed: bytes >= 0x80 are negative, so this is < 0x20 or >= 0x80 */
        __m128i m = _mm_cmplt_epi8(x, space);
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v1));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v2));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v3));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v4));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v5));
        int bits = _mm_movemask_epi8(m);
        if (bits)
            return i + (size_t)__builtin_ctz((unsigned)bits);
        i += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (i + 8 <= n) {
        uint64_t x, m;
        memcpy(&x, s + i, 8);
        /* a byte < 0x20 or >= 0x80, or equal to c (x ^ c has a zero byte) */
        m = ((x - ones * 0x20) | x);
        m |= ((x ^ (ones * c1)) - ones) & ~(x ^ (ones * c1));
        m |= ((x ^ (ones * c2)) - ones) & ~(x ^ (ones * c2));
        m |= ((x ^ (ones * c3)) - ones) & ~(x ^ (ones * c3));
        m |= ((x ^ (ones * c4)) - ones) & ~(x ^ (ones * c4));
        m |= ((x ^ (ones * c5)) - ones) & ~(x ^ (ones * c5));
        if (m & highs)
            break; /* the byte loop below finds which one */
        i += 8;
    }
#endif
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x20 || b >= 0x80 || b == c1 || b == c2 || b == c3 || b == c4 || b == c5)
            return i;
        i++;
    }
    return n;
}

/* First index >= i and < n whose byte is < 0x20 or one of c1, c2; bytes
 * >= 0x80 do not stop the scan but set *high.  For the decoder, which only
 * needs to know whether a string is plain ASCII. */
static inline size_t ea_scan_string(const uint8_t *s, size_t i, size_t n, uint8_t c1, uint8_t c2,
                                    int *high)
{
#ifdef EA_SSE2
    const __m128i lows = _mm_set1_epi8(0x1F);
    const __m128i v1 = _mm_set1_epi8((char)c1), v2 = _mm_set1_epi8((char)c2);
    __m128i seen = _mm_setzero_si128();
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        /* unsigned x <= 0x1F: max(x, 0x1F) == 0x1F */
        __m128i m = _mm_cmpeq_epi8(_mm_max_epu8(x, lows), lows);
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v1));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v2));
        int bits = _mm_movemask_epi8(m);
        if (bits) {
            size_t at = (size_t)__builtin_ctz((unsigned)bits);
            /* high bytes before the stop count */
            if (_mm_movemask_epi8(seen) | (_mm_movemask_epi8(x) & ((1 << at) - 1)))
                *high = 1;
            return i + at;
        }
        seen = _mm_or_si128(seen, x);
        i += 16;
    }
    if (_mm_movemask_epi8(seen))
        *high = 1;
#endif
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x20 || b == c1 || b == c2)
            return i;
        if (b >= 0x80)
            *high = 1;
        i++;
    }
    return n;
}

/* First index >= i and < n whose byte is not in logrus' bare set
 * [A-Za-z0-9-._/@^+]; n when every byte is. */
static inline size_t ea_scan_bare(const uint8_t *s, size_t i, size_t n)
{
#ifdef EA_SSE2
    const __m128i case_bit = _mm_set1_epi8(0x20);
    /* signed compares: shift each range to start at -128 */
    const __m128i alpha_lo = _mm_set1_epi8('a'), alpha_n = _mm_set1_epi8(-128 + 26);
    const __m128i digit_lo = _mm_set1_epi8('0'), digit_n = _mm_set1_epi8(-128 + 10);
    const __m128i s1 = _mm_set1_epi8('-'), s2 = _mm_set1_epi8('.'), s3 = _mm_set1_epi8('_');
    const __m128i s4 = _mm_set1_epi8('/'), s5 = _mm_set1_epi8('@'), s6 = _mm_set1_epi8('^');
    const __m128i s7 = _mm_set1_epi8('+');
    const __m128i top = _mm_set1_epi8((char)0x80);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i lower = _mm_or_si128(x, case_bit);
        /* unsigned (v - lo) < count, as a signed compare after flipping the top bit */
        __m128i a = _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8(lower, alpha_lo), top), alpha_n);
        __m128i d = _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8(x, digit_lo), top), digit_n);
        __m128i ok = _mm_or_si128(a, d);
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, s1));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, s2));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, s3));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, s4));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, s5));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, s6));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, s7));
        int bits = (~_mm_movemask_epi8(ok)) & 0xFFFF;
        if (bits)
            return i + (size_t)__builtin_ctz((unsigned)bits);
        i += 16;
    }
#endif
    while (i < n) {
        uint8_t b = s[i], lower = b | 0x20;
        if (!((lower >= 'a' && lower <= 'z') || (b >= '0' && b <= '9') || b == '-' || b == '.' ||
              b == '_' || b == '/' || b == '@' || b == '^' || b == '+'))
            return i;
        i++;
    }
    return n;
}

#endif
