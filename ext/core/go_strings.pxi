# Included by ../_core.pxi.  Twin: _formatting_py: "Go strings" (go_string) and go_is_print.

# ---------------------------------------------------------------------------
# UTF-8 the way Go decodes it, and strconv.IsPrint
# ---------------------------------------------------------------------------

cdef uint8_t PRINTABLE[139264]  # one bit per code point up to U+10FFFF


cdef void _load_printable(object ranges):
    memset(PRINTABLE, 0, sizeof(PRINTABLE))
    cdef uint32_t start, end, r
    for start, end in ranges:
        for r in range(start, end + 1):
            PRINTABLE[r >> 3] |= <uint8_t>(1 << (r & 7))


_load_printable(_GO_PRINTABLE_RANGES)


cdef inline bint go_is_print(uint32_t r) noexcept nogil:
    return (PRINTABLE[r >> 3] >> (r & 7)) & 1


cdef inline int decode_rune(const uint8_t *s, Py_ssize_t n, uint32_t *rune) noexcept nogil:
    """Width of the rune at s, or 0 for an ill-formed byte (utf8.DecodeRune)."""
    cdef uint8_t c = s[0]
    cdef uint8_t lo = 0x80, hi = 0xBF
    if c < 0x80:
        rune[0] = c
        return 1
    if c < 0xC2 or c > 0xF4:
        return 0
    if c < 0xE0:
        if n < 2 or s[1] < 0x80 or s[1] > 0xBF:
            return 0
        rune[0] = ((c & 0x1F) << 6) | (s[1] & 0x3F)
        return 2
    if c == 0xE0:
        lo = 0xA0
    elif c == 0xED:
        hi = 0x9F
    elif c == 0xF0:
        lo = 0x90
    elif c == 0xF4:
        hi = 0x8F
    if n < 2 or s[1] < lo or s[1] > hi:
        return 0
    if n < 3 or s[2] < 0x80 or s[2] > 0xBF:
        return 0
    if c < 0xF0:
        rune[0] = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F)
        return 3
    if n < 4 or s[3] < 0x80 or s[3] > 0xBF:
        return 0
    rune[0] = (((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6)
               | (s[3] & 0x3F))
    return 4


cdef inline int w_rune(Writer *w, uint32_t r) except -1:
    cdef char tmp[4]
    if r < 0x80:
        return w_byte(w, <char>r)
    if r < 0x800:
        tmp[0] = <char>(0xC0 | (r >> 6))
        tmp[1] = <char>(0x80 | (r & 0x3F))
        return w_mem(w, tmp, 2)
    if r < 0x10000:
        tmp[0] = <char>(0xE0 | (r >> 12))
        tmp[1] = <char>(0x80 | ((r >> 6) & 0x3F))
        tmp[2] = <char>(0x80 | (r & 0x3F))
        return w_mem(w, tmp, 3)
    tmp[0] = <char>(0xF0 | (r >> 18))
    tmp[1] = <char>(0x80 | ((r >> 12) & 0x3F))
    tmp[2] = <char>(0x80 | ((r >> 6) & 0x3F))
    tmp[3] = <char>(0x80 | (r & 0x3F))
    return w_mem(w, tmp, 4)


cdef const char *HEX = b"0123456789abcdef"
