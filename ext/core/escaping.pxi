# Included by ../_core.pxi.  Twin: _formatting_py: go_json_string, go_quote, text_value.

# ---------------------------------------------------------------------------
# Escaping: encoding/json strings, strconv.Quote, logrus' bare values
# ---------------------------------------------------------------------------

# Which bytes need a look is decided 16 at a time by core/scan.h: for
# encoding/json (with logrus' HTML escaping) < 0x20, '"', '\\', '<', '>', '&';
# for strconv.Quote < 0x20, '"', '\\', DEL; for both every byte >= 0x80, the
# start of a rune to decode.  logrus writes a text value bare when each of
# its bytes is in [A-Za-z0-9-._/@^+].


cdef inline char *put_hex_escape(char *out, char kind, uint32_t r, int digits) noexcept:
    cdef int k
    out[0] = b'\\'
    out[1] = kind
    for k in range(digits):
        out[2 + k] = HEX[(r >> (4 * (digits - 1 - k))) & 0xF]
    return out + 2 + digits


cdef extern from "core/scan.h" nogil:
    size_t ea_scan_plain(const uint8_t *s, size_t i, size_t n, uint8_t c1, uint8_t c2,
                         uint8_t c3, uint8_t c4, uint8_t c5)
    size_t ea_scan_string(const uint8_t *s, size_t i, size_t n, uint8_t c1, uint8_t c2,
                          int *high)
    size_t ea_scan_bare(const uint8_t *s, size_t i, size_t n)


# The scans stop at every byte < 0x20 or >= 0x80 and at these; the loops
# below decide only for the bytes a scan stopped at.
cdef inline Py_ssize_t json_plain_run(const uint8_t *s, Py_ssize_t i, Py_ssize_t n) noexcept:
    return <Py_ssize_t>ea_scan_plain(s, i, n, 0x22, 0x5C, 0x3C, 0x3E, 0x26)


cdef inline Py_ssize_t quote_plain_run(const uint8_t *s, Py_ssize_t i, Py_ssize_t n) noexcept:
    return <Py_ssize_t>ea_scan_plain(s, i, n, 0x22, 0x5C, 0x7F, 0x7F, 0x7F)


cdef inline char *w_room(Writer *w, char *out, Py_ssize_t extra) except NULL:
    """Room for `extra` more bytes at `out` (the buffer may move)."""
    w.len = out - w.buf
    w_reserve(w, extra)
    return w.buf + w.len


cdef int w_json_string(Writer *w, const uint8_t *s, Py_ssize_t n) except -1:
    """A Go string as encoding/json writes it (HTML-escaped)."""
    cdef Py_ssize_t i = 0, start
    cdef uint8_t b
    cdef uint32_t r
    cdef int width
    cdef char *out
    w_reserve(w, n + 16)  # grown at each escape, for the rest and that escape
    out = w.buf + w.len
    out[0] = b'"'
    out += 1
    while True:
        start = i
        i = json_plain_run(s, i, n)
        memcpy(out, s + start, i - start)
        out += i - start
        if i >= n:
            break
        out = w_room(w, out, n - i + 16)
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
    w_reserve(w, n + 16)  # grown at each escape, for the rest and that escape
    out = w.buf + w.len
    out[0] = b'"'
    out += 1
    while True:
        start = i
        i = quote_plain_run(s, i, n)
        memcpy(out, s + start, i - start)
        out += i - start
        if i >= n:
            break
        out = w_room(w, out, n - i + 16)
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
    if <Py_ssize_t>ea_scan_bare(s, 0, n) < n:
        return w_go_quote(w, s, n)
    return w_mem(w, s, n)
