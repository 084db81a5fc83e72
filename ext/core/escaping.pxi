# Included by ../_core.pxi.  Twin: _formatting_py: go_json_string, go_quote, text_value.

# ---------------------------------------------------------------------------
# Escaping: encoding/json strings, strconv.Quote, logrus' bare values
# ---------------------------------------------------------------------------

# Byte classes: 0 copies as is; 1 is an ASCII byte with an escape; 2 starts
# a multi-byte (or ill-formed) sequence that needs decoding.
cdef uint8_t JSON_CLASS[256]   # encoding/json with HTML escaping (logrus)
cdef uint8_t QUOTE_CLASS[256]  # strconv.Quote
cdef uint8_t BARE[256]         # 1: logrus writes the byte unquoted ([A-Za-z0-9-._/@^+])
cdef char QUOTE_ESCAPE[32][4]  # \a..\r short forms, else \xNN, for bytes < 0x20


cdef void _load_byte_tables():
    cdef int c
    for c in range(256):
        if c >= 0x80:
            JSON_CLASS[c] = 2
            QUOTE_CLASS[c] = 2
        else:
            JSON_CLASS[c] = c < 0x20 or c in (0x22, 0x5C, 0x3C, 0x3E, 0x26)
            QUOTE_CLASS[c] = c < 0x20 or c in (0x22, 0x5C, 0x7F)
        BARE[c] = ((0x61 <= c <= 0x7A) or (0x41 <= c <= 0x5A) or (0x30 <= c <= 0x39)
                   or c in (0x2D, 0x2E, 0x5F, 0x2F, 0x40, 0x5E, 0x2B))


_load_byte_tables()


cdef inline char *put_hex_escape(char *out, char kind, uint32_t r, int digits) noexcept:
    cdef int k
    out[0] = b'\\'
    out[1] = kind
    for k in range(digits):
        out[2 + k] = HEX[(r >> (4 * (digits - 1 - k))) & 0xF]
    return out + 2 + digits


cdef int w_json_string(Writer *w, const uint8_t *s, Py_ssize_t n) except -1:
    """A Go string as encoding/json writes it (HTML-escaped)."""
    cdef Py_ssize_t i = 0, start
    cdef uint8_t b
    cdef uint32_t r
    cdef int width
    cdef char *out
    w_reserve(w, 6 * n + 2)  # the longest escape, \u00XX, is 6 bytes for 1
    out = w.buf + w.len
    out[0] = b'"'
    out += 1
    while True:
        start = i
        while i < n and JSON_CLASS[s[i]] == 0:
            i += 1
        memcpy(out, s + start, i - start)
        out += i - start
        if i >= n:
            break
        b = s[i]
        if b < 0x80:
            out[0] = b'\\'
            if b == 0x22 or b == 0x5C:
                out[1] = <char>b
            elif b == 0x0A:
                out[1] = b'n'
            elif b == 0x0D:
                out[1] = b'r'
            elif b == 0x09:
                out[1] = b't'
            elif b == 0x08:
                out[1] = b'b'
            elif b == 0x0C:
                out[1] = b'f'
            else:
                out = put_hex_escape(out, b'u', b, 4)
                i += 1
                continue
            out += 2
            i += 1
            continue
        width = decode_rune(s + i, n - i, &r)
        if width == 0:
            out = put_hex_escape(out, b'u', 0xFFFD, 4)  # one per ill-formed byte
            i += 1
        elif r == 0x2028 or r == 0x2029:
            out = put_hex_escape(out, b'u', r, 4)
            i += width
        else:
            memcpy(out, s + i, width)
            out += width
            i += width
    out[0] = b'"'
    w.len = out + 1 - w.buf
    return 0


cdef int w_go_quote(Writer *w, const uint8_t *s, Py_ssize_t n) except -1:
    """strconv.Quote (fmt's %q) of a Go string."""
    cdef Py_ssize_t i = 0, start
    cdef uint8_t b
    cdef uint32_t r
    cdef int width
    cdef char *out
    w_reserve(w, 4 * n + 2)  # no escape is longer than 4 bytes per input byte
    out = w.buf + w.len
    out[0] = b'"'
    out += 1
    while True:
        start = i
        while i < n and QUOTE_CLASS[s[i]] == 0:
            i += 1
        memcpy(out, s + start, i - start)
        out += i - start
        if i >= n:
            break
        b = s[i]
        if b < 0x80:
            if b == 0x22 or b == 0x5C:
                out[0] = b'\\'
                out[1] = <char>b
                out += 2
            elif 0x07 <= b <= 0x0D:
                out[0] = b'\\'
                out[1] = b"abtnvfr"[b - 0x07]
                out += 2
            else:
                out = put_hex_escape(out, b'x', b, 2)
            i += 1
            continue
        width = decode_rune(s + i, n - i, &r)
        if width == 0:
            out = put_hex_escape(out, b'x', b, 2)
            i += 1
            continue
        if go_is_print(r):
            memcpy(out, s + i, width)
            out += width
        elif r < 0x10000:
            out = put_hex_escape(out, b'u', r, 4)
        else:
            out = put_hex_escape(out, b'U', r, 8)
        i += width
    out[0] = b'"'
    w.len = out + 1 - w.buf
    return 0


cdef int w_text_value(Writer *w, const uint8_t *s, Py_ssize_t n) except -1:
    """logrus TextFormatter: bare when every byte is safe, else %q."""
    cdef Py_ssize_t i
    for i in range(n):
        if not BARE[s[i]]:
            return w_go_quote(w, s, n)
    return w_mem(w, s, n)
