# Shared C core of the compiled modules (_formatting, _datapath): included,
# not imported, so the hot path stays inside one module with no calls
# through Python.  The readable specification is _formatting_py.py.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_ITEM, PySequence_Fast_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memset, strcmp

from events_audit._unicode_tables import GO_PRINTABLE_RANGES as _GO_PRINTABLE_RANGES

cdef extern from "Python.h":
    ctypedef struct PyObject
    double PyOS_string_to_double(const char *s, char **endptr,
                                 PyObject *overflow_exception) except? -1.0
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int *ptype) except NULL
    bint PyBytes_Check(object o)
    bint PyUnicode_Check(object o)

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct tm:
        int tm_sec
        int tm_min
        int tm_hour
        int tm_mday
        int tm_mon
        int tm_year
        long tm_gmtoff
    tm *localtime_r(const time_t *timep, tm *result)

cdef enum:
    MAX_NESTING_DEPTH = 10000  # Go's encoding/json scanner limit

# ---------------------------------------------------------------------------
# Writer: a growing byte buffer
# ---------------------------------------------------------------------------

cdef struct Writer:
    char *buf
    Py_ssize_t len
    Py_ssize_t cap


cdef int w_grow(Writer *w, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = w.cap * 2
    if cap < w.len + extra:
        cap = w.len + extra
    if cap < 256:
        cap = 256
    cdef char *buf = <char *>PyMem_Realloc(w.buf, cap)
    if buf == NULL:
        raise MemoryError()
    w.buf = buf
    w.cap = cap
    return 0


cdef inline int w_reserve(Writer *w, Py_ssize_t extra) except -1:
    if w.len + extra > w.cap:
        w_grow(w, extra)
    return 0


cdef inline int w_byte(Writer *w, char c) except -1:
    if w.len + 1 > w.cap:
        w_grow(w, 1)
    w.buf[w.len] = c
    w.len += 1
    return 0


cdef inline int w_mem(Writer *w, const void *p, Py_ssize_t n) except -1:
    if w.len + n > w.cap:
        w_grow(w, n)
    memcpy(w.buf + w.len, p, n)
    w.len += n
    return 0


cdef inline int w_str(Writer *w, const char *s) except -1:
    cdef Py_ssize_t n = 0
    while s[n]:
        n += 1
    return w_mem(w, s, n)


cdef int w_uint(Writer *w, uint64_t v) except -1:
    cdef char tmp[24]
    cdef int i = 24
    while True:
        i -= 1
        tmp[i] = <char>(48 + v % 10)
        v //= 10
        if v == 0:
            break
    return w_mem(w, tmp + i, 24 - i)


cdef inline int w_digits(Writer *w, int v, int width) except -1:
    # Zero-padded decimal of a non-negative int, at least `width` digits.
    cdef char tmp[16]
    cdef int i = 16
    while v > 0 or 16 - i < width:
        i -= 1
        tmp[i] = <char>(48 + v % 10)
        v //= 10
    return w_mem(w, tmp + i, 16 - i)


cdef inline void w_free(Writer *w) noexcept:
    PyMem_Free(w.buf)
    w.buf = NULL
    w.len = 0
    w.cap = 0


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


# ---------------------------------------------------------------------------
# Numbers: float64 as encoding/json and fmt's %v print them
# ---------------------------------------------------------------------------

cdef struct Decimal:
    # |x| == 0.digits * 10**point; nd == 0 for zero
    char digits[32]
    int nd
    int point
    bint neg


cdef int decimal_from_repr(Decimal *d, double x) except -1:
    """Shortest round-trip digits of x (what Go's strconv also picks)."""
    cdef char *text = PyOS_double_to_string(x, b'r', 0, 0, NULL)
    cdef char *p = text
    cdef int exp = 0, exp_sign = 1, whole = 0, leading_zeros = 0
    cdef bint seen_point = False
    d.nd = 0
    d.neg = p[0] == b'-'
    if d.neg:
        p += 1
    try:
        while p[0] and p[0] != b'e':
            if p[0] == b'.':
                seen_point = True
            else:
                if not seen_point:
                    whole += 1
                if d.nd == 0 and p[0] == b'0':
                    leading_zeros += 1
                elif d.nd < 32:
                    d.digits[d.nd] = p[0]
                    d.nd += 1
            p += 1
        if p[0] == b'e':
            p += 1
            if p[0] == b'-':
                exp_sign = -1
            if p[0] == b'-' or p[0] == b'+':
                p += 1
            while p[0]:
                exp = exp * 10 + (p[0] - 48)
                p += 1
    finally:
        PyMem_Free(text)
    while d.nd > 0 and d.digits[d.nd - 1] == b'0':
        d.nd -= 1
    d.point = whole + exp_sign * exp - leading_zeros if d.nd else 0
    return 0


cdef int w_zeros(Writer *w, Py_ssize_t n) except -1:
    w_reserve(w, n)
    memset(w.buf + w.len, b'0', n)
    w.len += n
    return 0


cdef int w_decimal_f(Writer *w, Decimal *d) except -1:
    if d.point <= 0:
        w_mem(w, b"0.", 2)
        w_zeros(w, -d.point)
        return w_mem(w, d.digits, d.nd)
    if d.point >= d.nd:
        w_mem(w, d.digits, d.nd)
        return w_zeros(w, d.point - d.nd)
    w_mem(w, d.digits, d.point)
    w_byte(w, b'.')
    return w_mem(w, d.digits + d.point, d.nd - d.point)


cdef int w_decimal_e(Writer *w, Decimal *d, int min_exp_digits) except -1:
    cdef int exp = d.point - 1
    w_byte(w, d.digits[0])
    if d.nd > 1:
        w_byte(w, b'.')
        w_mem(w, d.digits + 1, d.nd - 1)
    w_byte(w, b'e')
    if exp < 0:
        w_byte(w, b'-')
        exp = -exp
    else:
        w_byte(w, b'+')
    return w_digits(w, exp, min_exp_digits)


cdef int w_go_float(Writer *w, Decimal *d, bint json) except -1:
    """encoding/json ('f' for 1e-6 <= |x| < 1e21) or fmt %v (exp < -4 or >= 6)."""
    cdef int exp = d.point - 1
    if d.neg:
        w_byte(w, b'-')
    if d.nd == 0:
        return w_byte(w, b'0')
    if json:
        if exp < -6 or exp >= 21:
            return w_decimal_e(w, d, 1)
        return w_decimal_f(w, d)
    if exp < -4 or exp >= 6:
        return w_decimal_e(w, d, 2)
    return w_decimal_f(w, d)


cdef int number_decimal(const uint8_t *s, Py_ssize_t n, Decimal *d, Writer *tmp) except -2:
    """The float64 of a valid JSON number literal; -1 if ParseFloat overflows."""
    cdef Py_ssize_t i = 0, int_start, int_end
    cdef double x
    d.neg = s[0] == b'-'
    if d.neg:
        i = 1
    int_start = i
    while i < n and 0x30 <= s[i] <= 0x39:
        i += 1
    int_end = i
    if i == n and int_end - int_start <= 15:
        # An integer of at most 15 digits is exact: its digits are the answer.
        d.nd = 0
        d.point = <int>(int_end - int_start)
        if s[int_start] == b'0':
            d.point = 0
            return 0
        for i in range(int_start, int_end):
            d.digits[d.nd] = <char>s[i]
            d.nd += 1
        while d.nd > 0 and d.digits[d.nd - 1] == b'0':
            d.nd -= 1
        return 0
    if not number_is_finite(s, n):
        return -1
    tmp.len = 0
    w_mem(tmp, s, n)
    w_byte(tmp, 0)
    x = PyOS_string_to_double(tmp.buf, NULL, NULL)  # NULL: overflow gives inf
    if x != x or x - x != 0.0:  # inf: strconv.ParseFloat reports ErrRange
        return -1
    decimal_from_repr(d, x)
    return 0


cdef bint number_is_finite(const uint8_t *s, Py_ssize_t n) noexcept:
    """Cheap range check; borderline magnitudes are left to strtod."""
    cdef Py_ssize_t i = 0, int_digits = 0, lead = -1, pos = 0
    cdef int64_t exp = 0
    cdef int exp_sign = 1
    if s[0] == b'-':
        i = 1
    while i < n and 0x30 <= s[i] <= 0x39:
        if lead < 0 and s[i] != b'0':
            lead = pos
        int_digits += 1
        pos += 1
        i += 1
    if i < n and s[i] == b'.':
        i += 1
        while i < n and 0x30 <= s[i] <= 0x39:
            if lead < 0 and s[i] != b'0':
                lead = pos
            pos += 1
            i += 1
    if lead < 0:
        return True  # zero
    if i < n and (s[i] == b'e' or s[i] == b'E'):
        i += 1
        if s[i] == b'-':
            exp_sign = -1
        if s[i] == b'-' or s[i] == b'+':
            i += 1
        while i < n:
            if exp < 1000000000:
                exp = exp * 10 + (s[i] - 48)
            i += 1
    # decimal exponent of the leading significant digit
    exp = exp_sign * exp + int_digits - 1 - lead
    return exp < 308 or (exp == 308)  # exp == 308 is settled by strtod


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------

cdef inline int64_t floor_div(int64_t a, int64_t b) noexcept:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef int w_year(Writer *w, int year) except -1:
    if year < 0:
        w_byte(w, b'-')
        year = -year
    return w_digits(w, year, 4)


cdef int w_offset(Writer *w, long offset) except -1:
    """Go's "Z07:00": Z for zero, else whole minutes (truncated)."""
    cdef long minutes
    if offset == 0:
        return w_byte(w, b'Z')
    if offset < 0:
        w_byte(w, b'-')
        minutes = (-offset) // 60
    else:
        w_byte(w, b'+')
        minutes = offset // 60
    w_digits(w, <int>(minutes // 60), 2)
    w_byte(w, b':')
    return w_digits(w, <int>(minutes % 60), 2)


cdef int local_tm(int64_t seconds, tm *out) except -1:
    cdef time_t t = <time_t>seconds
    if localtime_r(&t, out) == NULL:
        raise OverflowError("timestamp out of range for localtime")
    return 0


cdef int w_local_rfc3339(Writer *w, int64_t unix_ns) except -1:
    """time.Unix(0, ns).Format(time.RFC3339) in the local zone."""
    cdef tm t
    local_tm(floor_div(unix_ns, 1000000000), &t)
    w_year(w, t.tm_year + 1900)
    w_byte(w, b'-')
    w_digits(w, t.tm_mon + 1, 2)
    w_byte(w, b'-')
    w_digits(w, t.tm_mday, 2)
    w_byte(w, b'T')
    w_digits(w, t.tm_hour, 2)
    w_byte(w, b':')
    w_digits(w, t.tm_min, 2)
    w_byte(w, b':')
    w_digits(w, t.tm_sec, 2)
    return w_offset(w, t.tm_gmtoff)


cdef int w_log_time(Writer *w, int64_t unix_ns) except -1:
    """The entry time as "02.01.2006 15:04:05.000" (milliseconds truncated)."""
    cdef tm t
    cdef int64_t seconds = floor_div(unix_ns, 1000000000)
    local_tm(seconds, &t)
    w_digits(w, t.tm_mday, 2)
    w_byte(w, b'.')
    w_digits(w, t.tm_mon + 1, 2)
    w_byte(w, b'.')
    w_year(w, t.tm_year + 1900)
    w_byte(w, b' ')
    w_digits(w, t.tm_hour, 2)
    w_byte(w, b':')
    w_digits(w, t.tm_min, 2)
    w_byte(w, b':')
    w_digits(w, t.tm_sec, 2)
    w_byte(w, b'.')
    return w_digits(w, <int>((unix_ns - seconds * 1000000000) // 1000000), 3)


cdef inline int two_digits(const uint8_t *s, Py_ssize_t n, Py_ssize_t i) noexcept:
    if i + 2 <= n and 0x30 <= s[i] <= 0x39 and 0x30 <= s[i + 1] <= 0x39:
        return (s[i] - 48) * 10 + s[i + 1] - 48
    return -1


cdef inline int days_in(int month, int year) noexcept:
    if month == 2:
        if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
            return 29
        return 28
    if month == 4 or month == 6 or month == 9 or month == 11:
        return 30
    return 31


cdef int parse_event_timestamp(const uint8_t *s, Py_ssize_t n, Writer *out) except -2:
    """Go 1.23 time.Time.UnmarshalJSON of the raw string body, as RFC 3339.

    See format_event_timestamp in the twin: time.Parse's lenient rules.
    Returns -1 when Go rejects it.
    """
    cdef int year, value, k, offset
    cdef int fields[5]
    cdef Py_ssize_t pos = 4
    cdef const char *seps = b"--T::"
    cdef int lows[5]
    cdef int highs[5]
    lows[:] = [1, 1, 0, 0, 0]
    highs[:] = [12, 31, 23, 59, 59]
    if n < 4:
        return -1
    year = 0
    for k in range(4):
        if not 0x30 <= s[k] <= 0x39:
            return -1
        year = year * 10 + s[k] - 48
    for k in range(5):
        if pos >= n or s[pos] != seps[k]:
            return -1
        pos += 1
        value = two_digits(s, n, pos)
        if value >= 0:
            pos += 2
        elif k == 2 and pos < n and 0x30 <= s[pos] <= 0x39:
            value = s[pos] - 48  # the hour may have one digit
            pos += 1
        else:
            return -1
        if value < lows[k] or value > highs[k]:
            return -1
        fields[k] = value
    if n - pos >= 2 and (s[pos] == b'.' or s[pos] == b',') and 0x30 <= s[pos + 1] <= 0x39:
        pos += 2
        while pos < n and 0x30 <= s[pos] <= 0x39:
            pos += 1
    if pos < n and s[pos] == b'Z':
        offset = 0
        pos += 1
    else:
        if n - pos < 6 or s[pos + 3] != b':':
            return -1
        value = two_digits(s, n, pos + 1)
        k = two_digits(s, n, pos + 4)
        if value < 0 or k < 0 or value > 24 or k > 60:
            return -1
        if s[pos] != b'+' and s[pos] != b'-':
            return -1
        offset = (value * 60 + k) * 60
        if s[pos] == b'-':
            offset = -offset
        pos += 6
    if pos != n or fields[1] > days_in(fields[0], year):
        return -1
    out.len = 0
    w_digits(out, year, 4)
    w_byte(out, b'-')
    w_digits(out, fields[0], 2)
    w_byte(out, b'-')
    w_digits(out, fields[1], 2)
    w_byte(out, b'T')
    w_digits(out, fields[2], 2)
    w_byte(out, b':')
    w_digits(out, fields[3], 2)
    w_byte(out, b':')
    w_digits(out, fields[4], 2)
    w_offset(out, offset)
    return 0


# ---------------------------------------------------------------------------
# nats.go Msg.Metadata(): the ack reply subject
# ---------------------------------------------------------------------------

cdef struct AckMeta:
    Py_ssize_t stream_start, stream_end, consumer_start, consumer_end
    uint64_t delivered, sequence, pending
    int64_t timestamp_ns


cdef int64_t parse_ack_number(const uint8_t *s, Py_ssize_t n) noexcept:
    # nats.go parseNum: int64 arithmetic that wraps; -1 unless all digits
    cdef uint64_t v = 0
    cdef Py_ssize_t i
    if n == 0:
        return -1
    for i in range(n):
        if not 0x30 <= s[i] <= 0x39:
            return -1
        v = v * 10 + (s[i] - 48)
    return <int64_t>v


cdef bint parse_ack_reply(const uint8_t *s, Py_ssize_t n, AckMeta *m) noexcept:
    cdef Py_ssize_t starts[12]
    cdef Py_ssize_t ends[12]
    cdef Py_ssize_t i, start = 0, count = 0, base
    if n < 8 or memcmp(s, b"$JS.ACK.", 8) != 0:
        return False
    for i in range(n + 1):
        if i == n or s[i] == b'.':
            if count < 12:
                starts[count] = start
                ends[count] = i
            count += 1
            start = i + 1
    if count < 9 or (9 < count < 11):
        return False
    base = 2 if count == 9 else 4
    m.stream_start, m.stream_end = starts[base], ends[base]
    m.consumer_start, m.consumer_end = starts[base + 1], ends[base + 1]
    # nats.go converts the int64 to uint64: -1 reads 18446744073709551615
    m.delivered = <uint64_t>parse_ack_number(s + starts[base + 2],
                                             ends[base + 2] - starts[base + 2])
    m.sequence = <uint64_t>parse_ack_number(s + starts[base + 3], ends[base + 3] - starts[base + 3])
    m.timestamp_ns = parse_ack_number(s + starts[base + 5], ends[base + 5] - starts[base + 5])
    m.pending = <uint64_t>parse_ack_number(s + starts[base + 6], ends[base + 6] - starts[base + 6])
    return True


# ---------------------------------------------------------------------------
# JSON decoding with Go's semantics into a compact tree
# ---------------------------------------------------------------------------

cdef enum:  # Item.kind
    K_NULL
    K_TRUE
    K_FALSE
    K_NUMBER
    K_STRING
    K_OBJECT
    K_ARRAY

cdef enum:
    F_PLAIN = 1   # Item.flags: a string body that unquotes to itself (no escape, ASCII)
    INVALID = -1  # the payload is not an Event to Go: a raw event


cdef struct Item:
    # A value, and its key when it is an object member.
    uint32_t key_off      # in Decoder.keys
    uint32_t key_len
    uint32_t pos          # where the value starts: the order of appearance
    uint32_t a            # string/number: span start; object/array: first child
    uint32_t b            # string/number: span end; object/array: child count
    uint8_t kind
    uint8_t flags


cdef struct Decoder:
    const uint8_t *s
    Py_ssize_t n
    Py_ssize_t pos
    int depth
    Item *items          # finished children, grouped per container
    Py_ssize_t n_items
    Py_ssize_t cap_items
    Item *stack          # children of the containers still open
    Py_ssize_t n_stack
    Py_ssize_t cap_stack
    Writer keys          # unquoted object keys
    Writer tmp           # scratch (number text, unquoted strings)


cdef int push_item(Item **arr, Py_ssize_t *n, Py_ssize_t *cap, Item *item) except -1:
    cdef Py_ssize_t new_cap
    cdef Item *grown
    if n[0] == cap[0]:
        new_cap = cap[0] * 2 if cap[0] else 64
        grown = <Item *>PyMem_Realloc(arr[0], new_cap * sizeof(Item))
        if grown == NULL:
            raise MemoryError()
        arr[0] = grown
        cap[0] = new_cap
    arr[0][n[0]] = item[0]
    n[0] += 1
    return 0


cdef inline void skip_ws(Decoder *d) noexcept:
    cdef uint8_t c
    while d.pos < d.n:
        c = d.s[d.pos]
        if c == 0x20 or c == 0x0A or c == 0x0D or c == 0x09:
            d.pos += 1
        else:
            return


cdef inline bint is_hex(uint8_t c) noexcept:
    return (0x30 <= c <= 0x39) or (0x61 <= c <= 0x66) or (0x41 <= c <= 0x46)


cdef int scan_string(Decoder *d, Item *out) noexcept:
    """Validate a string literal at d.pos; out gets its body span and flags."""
    cdef const uint8_t *s = d.s
    cdef Py_ssize_t pos = d.pos + 1, n = d.n
    cdef uint8_t c
    cdef uint8_t flags = F_PLAIN
    out.a = <uint32_t>pos
    while pos < n:
        c = s[pos]
        if c == 0x22:
            out.b = <uint32_t>pos
            out.kind = K_STRING
            out.flags = flags
            d.pos = pos + 1
            return 0
        if c < 0x20:
            return INVALID
        if c == 0x5C:
            flags = 0
            if pos + 1 >= n:
                return INVALID
            c = s[pos + 1]
            if c == b'u':
                if (pos + 5 >= n or not is_hex(s[pos + 2]) or not is_hex(s[pos + 3])
                        or not is_hex(s[pos + 4]) or not is_hex(s[pos + 5])):
                    return INVALID
                pos += 6
                continue
            if not (c == 0x22 or c == 0x5C or c == 0x2F or c == b'b' or c == b'f'
                    or c == b'n' or c == b'r' or c == b't'):
                return INVALID
            pos += 2
            continue
        if c >= 0x80:
            flags = 0
        pos += 1
    return INVALID


cdef inline uint32_t hex4(const uint8_t *s) noexcept:
    cdef uint32_t r = 0
    cdef int i
    cdef uint8_t c
    for i in range(4):
        c = s[i]
        if c <= 0x39:
            r = r * 16 + (c - 0x30)
        elif c >= 0x61:
            r = r * 16 + (c - 0x61 + 10)
        else:
            r = r * 16 + (c - 0x41 + 10)
    return r


cdef int unquote_into(Writer *w, const uint8_t *s, Py_ssize_t n) except -1:
    """encoding/json unquote of a validated body: escapes resolved, invalid
    UTF-8 and unpaired surrogates as U+FFFD."""
    cdef Py_ssize_t i = 0, start = 0
    cdef uint8_t c
    cdef uint32_t r, low
    cdef int width
    while i < n:
        c = s[i]
        if c == 0x5C:
            w_mem(w, s + start, i - start)
            c = s[i + 1]
            if c == b'u':
                r = hex4(s + i + 2)
                i += 6
                if 0xD800 <= r < 0xE000:
                    low = 0
                    if i + 6 <= n and s[i] == 0x5C and s[i + 1] == b'u':
                        low = hex4(s + i + 2)
                    if r < 0xDC00 and 0xDC00 <= low < 0xE000:
                        r = 0x10000 + ((r - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    else:
                        r = 0xFFFD
                w_rune(w, r)
            else:
                if c == b'b':
                    c = 0x08
                elif c == b'f':
                    c = 0x0C
                elif c == b'n':
                    c = 0x0A
                elif c == b'r':
                    c = 0x0D
                elif c == b't':
                    c = 0x09
                w_byte(w, <char>c)
                i += 2
            start = i
        elif c < 0x80:
            i += 1
        else:
            width = decode_rune(s + i, n - i, &r)
            if width == 0:
                w_mem(w, s + start, i - start)
                w_mem(w, b"\xef\xbf\xbd", 3)
                i += 1
                start = i
            else:
                i += width
    return w_mem(w, s + start, n - start)


cdef int expect_literal(Decoder *d, const char *lit, Py_ssize_t n, uint8_t kind,
                        Item *out) noexcept:
    if d.pos + n > d.n or memcmp(d.s + d.pos, lit, n) != 0:
        return INVALID
    d.pos += n
    out.kind = kind
    return 0


cdef int scan_number(Decoder *d, Item *out) noexcept:
    cdef const uint8_t *s = d.s
    cdef Py_ssize_t pos = d.pos, n = d.n
    out.a = <uint32_t>pos
    if pos < n and s[pos] == b'-':
        pos += 1
    if pos >= n or not 0x30 <= s[pos] <= 0x39:
        return INVALID
    if s[pos] == b'0':
        pos += 1
    else:
        while pos < n and 0x30 <= s[pos] <= 0x39:
            pos += 1
    if pos < n and s[pos] == b'.':
        pos += 1
        if pos >= n or not 0x30 <= s[pos] <= 0x39:
            return INVALID
        while pos < n and 0x30 <= s[pos] <= 0x39:
            pos += 1
    if pos < n and (s[pos] == b'e' or s[pos] == b'E'):
        pos += 1
        if pos < n and (s[pos] == b'+' or s[pos] == b'-'):
            pos += 1
        if pos >= n or not 0x30 <= s[pos] <= 0x39:
            return INVALID
        while pos < n and 0x30 <= s[pos] <= 0x39:
            pos += 1
    out.b = <uint32_t>pos
    out.kind = K_NUMBER
    d.pos = pos
    return 0


# qsort has no context argument; the key buffer of the running sort.
cdef const char *SORT_KEYS = NULL


cdef int compare_members(const void *pa, const void *pb) noexcept nogil:
    cdef const Item *a = <const Item *>pa
    cdef const Item *b = <const Item *>pb
    cdef uint32_t n = a.key_len if a.key_len < b.key_len else b.key_len
    cdef int c = memcmp(SORT_KEYS + a.key_off, SORT_KEYS + b.key_off, n)
    if c:
        return c
    if a.key_len != b.key_len:
        return -1 if a.key_len < b.key_len else 1
    return -1 if a.pos < b.pos else (1 if a.pos > b.pos else 0)


cdef Py_ssize_t sort_members(Decoder *d, Item *members, Py_ssize_t count) noexcept:
    """Sort by key bytes (Go sorts map keys bytewise) and keep the last of
    each duplicate key; returns the new count."""
    cdef Py_ssize_t i, kept = 0
    global SORT_KEYS
    if count < 2:
        return count
    SORT_KEYS = d.keys.buf
    qsort(members, count, sizeof(Item), compare_members)
    for i in range(count):
        if (i + 1 < count and members[i].key_len == members[i + 1].key_len
                and memcmp(d.keys.buf + members[i].key_off, d.keys.buf + members[i + 1].key_off,
                           members[i].key_len) == 0):
            continue
        members[kept] = members[i]
        kept += 1
    return kept


cdef int close_container(Decoder *d, Py_ssize_t base, Item *out) except -2:
    """Move the children on the stack since `base` to the finished items."""
    cdef Py_ssize_t count = d.n_stack - base, i
    if out.kind == K_OBJECT:
        count = sort_members(d, d.stack + base, count)
    out.a = <uint32_t>d.n_items
    out.b = <uint32_t>count
    for i in range(count):
        push_item(&d.items, &d.n_items, &d.cap_items, &d.stack[base + i])
    d.n_stack = base
    return 0


cdef int parse_key(Decoder *d, Item *key) except -2:
    """A member key at d.pos; with its unquoted bytes appended to d.keys."""
    if d.pos >= d.n or d.s[d.pos] != 0x22:
        return INVALID
    if scan_string(d, key) < 0:
        return INVALID
    key.key_off = <uint32_t>d.keys.len
    if key.flags & F_PLAIN:
        w_mem(&d.keys, d.s + key.a, key.b - key.a)
    else:
        unquote_into(&d.keys, d.s + key.a, key.b - key.a)
    key.key_len = <uint32_t>(d.keys.len - key.key_off)
    skip_ws(d)
    if d.pos >= d.n or d.s[d.pos] != b':':
        return INVALID
    d.pos += 1
    return 0


cdef int parse_value(Decoder *d, Item *out, bint keep) except -2:
    """Any JSON value as Go decodes it into interface{}.

    keep=False only validates, as Go skips the values of unknown keys.
    """
    cdef uint8_t c
    cdef Decimal dec
    skip_ws(d)
    if d.pos >= d.n:
        return INVALID
    c = d.s[d.pos]
    out.pos = <uint32_t>d.pos
    out.flags = 0
    if c == b'{' or c == b'[':
        return parse_container(d, out, keep)
    if c == 0x22:
        return scan_string(d, out)
    if c == b't':
        return expect_literal(d, b"true", 4, K_TRUE, out)
    if c == b'f':
        return expect_literal(d, b"false", 5, K_FALSE, out)
    if c == b'n':
        return expect_literal(d, b"null", 4, K_NULL, out)
    if scan_number(d, out) < 0:
        return INVALID
    if keep and number_decimal(d.s + out.a, out.b - out.a, &dec, &d.tmp) < 0:
        return INVALID  # out of float64's range: strconv.ParseFloat fails
    return 0


cdef int parse_container(Decoder *d, Item *out, bint keep) except -2:
    cdef Item child
    cdef Py_ssize_t base = d.n_stack
    cdef bint is_object = d.s[d.pos] == b'{'
    cdef uint8_t close = b'}' if is_object else b']'
    cdef uint8_t c
    d.depth += 1
    if d.depth > MAX_NESTING_DEPTH:
        return INVALID
    d.pos += 1
    out.kind = K_OBJECT if is_object else K_ARRAY
    skip_ws(d)
    if d.pos < d.n and d.s[d.pos] == close:
        d.pos += 1
    else:
        while True:
            if is_object:
                skip_ws(d)
                if parse_key(d, &child) < 0:
                    return INVALID
            if parse_value(d, &child, keep) < 0:
                return INVALID
            if keep:
                push_item(&d.stack, &d.n_stack, &d.cap_stack, &child)
            skip_ws(d)
            if d.pos >= d.n:
                return INVALID
            c = d.s[d.pos]
            d.pos += 1
            if c == close:
                break
            if c != b',':
                return INVALID
    d.depth -= 1
    if keep:
        close_container(d, base, out)
    return 0


# The Event struct's fields.
cdef enum:
    FIELD_NONE = -1
    FIELD_ID = 0
    FIELD_TYPE = 1
    FIELD_SOURCE = 2
    FIELD_TIMESTAMP = 3
    FIELD_DATA = 4


cdef int match_field(const uint8_t *key, Py_ssize_t n) noexcept:
    """Go's field lookup: exact name, else foldName (ASCII upper-case; U+017F
    folds to 'S' and U+212A to 'K'; no other rune folds to ASCII)."""
    cdef char folded[16]
    cdef Py_ssize_t i = 0, k = 0
    cdef uint8_t c
    while i < n:
        if k >= 10:
            return FIELD_NONE
        c = key[i]
        if 0x61 <= c <= 0x7A:
            folded[k] = <char>(c - 32)
            i += 1
        elif c < 0x80:
            folded[k] = <char>c
            i += 1
        elif c == 0xC5 and i + 1 < n and key[i + 1] == 0xBF:
            folded[k] = b'S'
            i += 2
        elif c == 0xE2 and i + 2 < n and key[i + 1] == 0x84 and key[i + 2] == 0xAA:
            folded[k] = b'K'
            i += 3
        else:
            return FIELD_NONE
        k += 1
    if k == 2 and memcmp(folded, b"ID", 2) == 0:
        return FIELD_ID
    if k == 4 and memcmp(folded, b"TYPE", 4) == 0:
        return FIELD_TYPE
    if k == 6 and memcmp(folded, b"SOURCE", 6) == 0:
        return FIELD_SOURCE
    if k == 9 and memcmp(folded, b"TIMESTAMP", 9) == 0:
        return FIELD_TIMESTAMP
    if k == 4 and memcmp(folded, b"DATA", 4) == 0:
        return FIELD_DATA
    return FIELD_NONE


cdef struct Event:
    Item strings[3]      # id, type, source: string spans (kind K_NULL when unset)
    Writer timestamp     # event_timestamp, formatted
    bint has_data        # false: a nil map
    Item data            # the object (children in Decoder.items)


cdef int decode_event(Decoder *d, Event *ev) except -2:
    """json.Unmarshal(payload, &event): 0, or INVALID when Go fails."""
    cdef Item key, value
    cdef Py_ssize_t data_base = -1, i
    cdef int field
    cdef uint8_t c
    ev.strings[0].kind = K_NULL
    ev.strings[1].kind = K_NULL
    ev.strings[2].kind = K_NULL
    ev.timestamp.len = 0
    ev.has_data = False
    skip_ws(d)
    if d.pos >= d.n:
        return INVALID
    c = d.s[d.pos]
    if c == b'n':
        if expect_literal(d, b"null", 4, K_NULL, &value) < 0:
            return INVALID
    elif c != b'{':
        return INVALID
    else:
        d.depth = 1
        d.pos += 1
        skip_ws(d)
        if d.pos < d.n and d.s[d.pos] == b'}':
            d.pos += 1
        else:
            while True:
                skip_ws(d)
                if parse_key(d, &key) < 0:
                    return INVALID
                field = match_field(<const uint8_t *>d.keys.buf + key.key_off, key.key_len)
                d.keys.len = key.key_off  # the key itself is not kept
                skip_ws(d)
                if d.pos >= d.n:
                    return INVALID
                c = d.s[d.pos]
                if field == FIELD_NONE:
                    if parse_value(d, &value, False) < 0:
                        return INVALID
                elif c == b'n':
                    # null: no change to strings or the time; a nil map
                    if expect_literal(d, b"null", 4, K_NULL, &value) < 0:
                        return INVALID
                    if field == FIELD_DATA:
                        ev.has_data = False
                        data_base = -1
                elif field == FIELD_DATA:
                    if c != b'{' or parse_value(d, &value, True) < 0:
                        return INVALID
                    # Go decodes into the existing map: occurrences merge.
                    if data_base < 0:
                        data_base = d.n_stack
                    for i in range(value.b):
                        push_item(&d.stack, &d.n_stack, &d.cap_stack, &d.items[value.a + i])
                    ev.has_data = True
                elif c != 0x22 or scan_string(d, &value) < 0:
                    return INVALID
                elif field == FIELD_TIMESTAMP:
                    if parse_event_timestamp(d.s + value.a, value.b - value.a,
                                             &ev.timestamp) < 0:
                        return INVALID
                else:
                    ev.strings[field] = value
                skip_ws(d)
                if d.pos >= d.n:
                    return INVALID
                c = d.s[d.pos]
                d.pos += 1
                if c == b'}':
                    break
                if c != b',':
                    return INVALID
    skip_ws(d)
    if d.pos != d.n:
        return INVALID
    if ev.has_data:
        ev.data.kind = K_OBJECT
        close_container(d, data_base, &ev.data)
    return 0


# ---------------------------------------------------------------------------
# Rendering decoded values
# ---------------------------------------------------------------------------

cdef int w_json_literal_string(Writer *w, Decoder *d, Item *item) except -1:
    if item.flags & F_PLAIN:
        return w_json_string(w, d.s + item.a, item.b - item.a)
    d.tmp.len = 0
    unquote_into(&d.tmp, d.s + item.a, item.b - item.a)
    return w_json_string(w, <const uint8_t *>d.tmp.buf, d.tmp.len)


cdef int w_json_value(Writer *w, Decoder *d, Item *item) except -1:
    cdef Decimal dec
    cdef uint32_t i
    cdef Item *child
    if item.kind == K_STRING:
        return w_json_literal_string(w, d, item)
    if item.kind == K_NUMBER:
        if number_decimal(d.s + item.a, item.b - item.a, &dec, &d.tmp) < 0:
            raise AssertionError("a number out of range passed validation")
        return w_go_float(w, &dec, True)
    if item.kind == K_NULL:
        return w_mem(w, b"null", 4)
    if item.kind == K_TRUE:
        return w_mem(w, b"true", 4)
    if item.kind == K_FALSE:
        return w_mem(w, b"false", 5)
    w_byte(w, b'{' if item.kind == K_OBJECT else b'[')
    for i in range(item.b):
        if i:
            w_byte(w, b',')
        child = &d.items[item.a + i]
        if item.kind == K_OBJECT:
            w_json_string(w, <const uint8_t *>d.keys.buf + child.key_off, child.key_len)
            w_byte(w, b':')
        w_json_value(w, d, child)
    return w_byte(w, b'}' if item.kind == K_OBJECT else b']')


cdef int w_sprint_value(Writer *w, Decoder *d, Item *item) except -1:
    """fmt.Sprint of a decoded value: map[k:v ...], [a b], <nil>."""
    cdef Decimal dec
    cdef uint32_t i
    cdef Item *child
    if item.kind == K_STRING:
        return unquote_into(w, d.s + item.a, item.b - item.a)
    if item.kind == K_NUMBER:
        if number_decimal(d.s + item.a, item.b - item.a, &dec, &d.tmp) < 0:
            raise AssertionError("a number out of range passed validation")
        return w_go_float(w, &dec, False)
    if item.kind == K_NULL:
        return w_mem(w, b"<nil>", 5)
    if item.kind == K_TRUE:
        return w_mem(w, b"true", 4)
    if item.kind == K_FALSE:
        return w_mem(w, b"false", 5)
    if item.kind == K_OBJECT:
        w_mem(w, b"map[", 4)
    else:
        w_byte(w, b'[')
    for i in range(item.b):
        if i:
            w_byte(w, b' ')
        child = &d.items[item.a + i]
        if item.kind == K_OBJECT:
            w_mem(w, d.keys.buf + child.key_off, child.key_len)
            w_byte(w, b':')
        w_sprint_value(w, d, child)
    return w_byte(w, b']')


# ---------------------------------------------------------------------------
# One message, one line
# ---------------------------------------------------------------------------

# The handler's fields, in Go's sorted key order.
cdef enum FieldKey:
    KEY_CONSUMER
    KEY_DATA_SIZE
    KEY_DELIVERED
    KEY_EVENT_DATA
    KEY_EVENT_ID
    KEY_EVENT_TIMESTAMP
    KEY_EVENT_TYPE
    KEY_JS_TIMESTAMP
    KEY_PENDING
    KEY_RAW_DATA
    KEY_REPLY
    KEY_SEQUENCE
    KEY_SOURCE
    KEY_STREAM
    KEY_SUBJECT
    N_KEYS

_FIELD_KEYS = (
    "consumer", "data_size", "delivered", "event_data", "event_id", "event_timestamp",
    "event_type", "js_timestamp", "pending", "raw_data", "reply", "sequence", "source",
    "stream", "subject",
)

# What goes before each value, per layout: ,"key":   key=   ESC[36mkey ESC[0m=
cdef char PREFIXES[3][N_KEYS][32]
cdef uint8_t PREFIX_LENS[3][N_KEYS]


cdef void _load_prefixes():
    cdef int layout, key
    cdef bytes text
    for key, name in enumerate(_FIELD_KEYS):
        for layout, text in enumerate((b',"%s":' % name.encode(), b" %s=" % name.encode(),
                                       b" \x1b[36m%s\x1b[0m=" % name.encode())):
            memcpy(PREFIXES[layout][key], <const char *>text, len(text))
            PREFIX_LENS[layout][key] = <uint8_t>len(text)


_load_prefixes()

cdef const char *MSG_STRUCTURED = b"Received structured event"
cdef const char *MSG_RAW = b"Received raw event"


cdef struct Formatter:
    int layout
    Writer out
    Writer head[2]       # per batch: what precedes the fields (raw, structured)
    Writer tail          # per batch: what follows them
    Writer log_time      # per batch: the entry time, "02.01.2006 15:04:05.000"
    Writer scratch       # one field value before it is quoted
    Writer js_time       # js_timestamp, cached per second
    int64_t js_time_second
    bint js_time_valid
    uint64_t last_delivered  # of the last message formatted (0: no ack reply)
    Decoder dec
    Event ev


cdef int begin_formatter(Formatter *f, int layout, int64_t now_ns) except -1:
    """The parts of every line that depend only on the batch."""
    cdef Writer *log_time = &f.log_time
    cdef int structured
    cdef const char *msg
    f.layout = layout
    f.out.len = 0
    f.head[0].len = 0
    f.head[1].len = 0
    f.tail.len = 0
    f.log_time.len = 0
    f.js_time_valid = False
    w_log_time(log_time, now_ns)
    for structured in range(2):
        msg = MSG_STRUCTURED if structured else MSG_RAW
        if layout == 0:
            # '{' and the first field are written per line; level and msg
            # sit between js_timestamp and pending.
            w_mem(&f.head[structured], b',"level":"info","msg":"', 23)
            w_str(&f.head[structured], msg)
            w_byte(&f.head[structured], b'"')
        elif layout == 1:
            w_mem(&f.head[structured], b"time=", 5)
            w_go_quote(&f.head[structured], <const uint8_t *>log_time.buf, log_time.len)
            w_mem(&f.head[structured], b" level=info msg=", 16)
            w_go_quote(&f.head[structured], <const uint8_t *>msg, 25 if structured else 18)
        else:
            w_mem(&f.head[structured], b"\x1b[36mINFO\x1b[0m[", 14)
            w_mem(&f.head[structured], log_time.buf, log_time.len)
            w_mem(&f.head[structured], b"] ", 2)
            w_str(&f.head[structured], msg)  # %-44s, then a space
            w_mem(&f.head[structured], b"                              ",
                  45 - (25 if structured else 18))
    if layout == 0:
        w_mem(&f.tail, b',"time":', 8)
        w_json_string(&f.tail, <const uint8_t *>log_time.buf, log_time.len)
        w_byte(&f.tail, b'}')
    w_byte(&f.tail, b'\n')
    return 0


cdef inline int begin_field(Formatter *f, FieldKey key, bint *first) except -1:
    if first[0]:
        first[0] = False
        if f.layout == 0:  # the line's '{' takes the place of the comma
            w_byte(&f.out, b'{')
            return w_mem(&f.out, PREFIXES[0][<int>key] + 1, PREFIX_LENS[0][<int>key] - 1)
    return w_mem(&f.out, PREFIXES[f.layout][<int>key], PREFIX_LENS[f.layout][<int>key])


cdef int field_string(Formatter *f, FieldKey key, const uint8_t *s, Py_ssize_t n,
                      bint *first) except -1:
    begin_field(f, key, first)
    if f.layout == 0:
        return w_json_string(&f.out, s, n)
    return w_text_value(&f.out, s, n)


cdef int field_uint(Formatter *f, FieldKey key, uint64_t v, bint *first) except -1:
    begin_field(f, key, first)
    return w_uint(&f.out, v)


cdef int field_event_string(Formatter *f, FieldKey key, Item *item,
                            bint *first) except -1:
    """id/type/source: unquoted from the payload, or "" when unset."""
    cdef Decoder *d = &f.dec
    if item.kind == K_NULL:
        return field_string(f, key, NULL, 0, first)
    if item.flags & F_PLAIN:
        return field_string(f, key, d.s + item.a, item.b - item.a, first)
    f.scratch.len = 0
    unquote_into(&f.scratch, d.s + item.a, item.b - item.a)
    return field_string(f, key, <const uint8_t *>f.scratch.buf, f.scratch.len, first)


cdef int field_event_data(Formatter *f, bint *first) except -1:
    begin_field(f, KEY_EVENT_DATA, first)
    if f.layout == 0:
        if not f.ev.has_data:
            return w_mem(&f.out, b"null", 4)
        return w_json_value(&f.out, &f.dec, &f.ev.data)
    f.scratch.len = 0
    if not f.ev.has_data:
        return w_go_quote(&f.out, <const uint8_t *>b"map[]", 5)
    w_sprint_value(&f.scratch, &f.dec, &f.ev.data)
    return w_text_value(&f.out, <const uint8_t *>f.scratch.buf, f.scratch.len)


cdef int format_message(Formatter *f, const uint8_t *subject, Py_ssize_t subject_len,
                        const uint8_t *reply, Py_ssize_t reply_len,
                        const uint8_t *payload, Py_ssize_t payload_len) except -1:
    """Append the line for one message to f.out; returns 1 if structured."""
    cdef AckMeta meta
    cdef bint has_meta = reply_len > 0 and parse_ack_reply(reply, reply_len, &meta)
    cdef bint structured
    cdef bint first = True
    cdef Decoder *d = &f.dec
    cdef Writer *head
    cdef int64_t second

    d.s = payload
    d.n = payload_len
    d.pos = 0
    d.depth = 0
    d.n_items = 0
    d.n_stack = 0
    d.keys.len = 0
    structured = decode_event(d, &f.ev) == 0
    head = &f.head[1 if structured else 0]
    f.last_delivered = meta.delivered if has_meta else 0

    if has_meta:
        second = floor_div(meta.timestamp_ns, 1000000000)
        if not f.js_time_valid or second != f.js_time_second:
            f.js_time.len = 0
            w_local_rfc3339(&f.js_time, meta.timestamp_ns)
            f.js_time_second = second
            f.js_time_valid = True

    if f.layout != 0:
        w_mem(&f.out, head.buf, head.len)
    if has_meta:
        field_string(f, KEY_CONSUMER, reply + meta.consumer_start,
                     meta.consumer_end - meta.consumer_start, &first)
    field_uint(f, KEY_DATA_SIZE, <uint64_t>payload_len, &first)
    if has_meta:
        field_uint(f, KEY_DELIVERED, meta.delivered, &first)
    if structured:
        field_event_data(f, &first)
        field_event_string(f, KEY_EVENT_ID, &f.ev.strings[FIELD_ID], &first)
        if f.ev.timestamp.len:
            field_string(f, KEY_EVENT_TIMESTAMP, <const uint8_t *>f.ev.timestamp.buf,
                         f.ev.timestamp.len, &first)
        else:  # time.Time{}
            field_string(f, KEY_EVENT_TIMESTAMP, <const uint8_t *>b"0001-01-01T00:00:00Z", 20,
                         &first)
        field_event_string(f, KEY_EVENT_TYPE, &f.ev.strings[FIELD_TYPE], &first)
    if has_meta:
        field_string(f, KEY_JS_TIMESTAMP, <const uint8_t *>f.js_time.buf, f.js_time.len,
                     &first)
    if f.layout == 0:
        w_mem(&f.out, head.buf, head.len)  # level, msg
    if has_meta:
        field_uint(f, KEY_PENDING, meta.pending, &first)
    if not structured:
        field_string(f, KEY_RAW_DATA, payload, payload_len, &first)
    field_string(f, KEY_REPLY, reply, reply_len, &first)
    if has_meta:
        field_uint(f, KEY_SEQUENCE, meta.sequence, &first)
    if structured:
        field_event_string(f, KEY_SOURCE, &f.ev.strings[FIELD_SOURCE], &first)
    if has_meta:
        field_string(f, KEY_STREAM, reply + meta.stream_start,
                     meta.stream_end - meta.stream_start, &first)
    field_string(f, KEY_SUBJECT, subject, subject_len, &first)
    w_mem(&f.out, f.tail.buf, f.tail.len)
    return 1 if structured else 0


# ---------------------------------------------------------------------------
# The batch API
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Other entries: the original's per-message debug lines
# ---------------------------------------------------------------------------

cdef const char *EMPTY = b""


cdef struct Field:
    const char *key
    const uint8_t *s     # a string value, or NULL for the number
    Py_ssize_t n
    uint64_t number


cdef int w_entry(Formatter *f, Writer *w, const char *msg, Field *fields,
                 int count) except -1:
    """A debug-level logrus entry; fields sorted by key, as logrus sorts them."""
    cdef int i, fixed = 0
    cdef Py_ssize_t msg_len = 0
    cdef const char *fixed_keys[3]
    fixed_keys[:] = [b"level", b"msg", b"time"]
    while msg[msg_len]:
        msg_len += 1
    if f.layout == 0:
        w_byte(w, b'{')
        for i in range(count + 1):
            # the entry's own keys go in their sorted places among the fields
            while fixed < 3 and (i == count or strcmp(fixed_keys[fixed], fields[i].key) < 0):
                if i or fixed:
                    w_byte(w, b',')
                if fixed == 0:
                    w_mem(w, b'"level":"debug"', 15)
                elif fixed == 1:
                    w_mem(w, b'"msg":', 6)
                    w_json_string(w, <const uint8_t *>msg, msg_len)
                else:
                    w_mem(w, b'"time":', 7)
                    w_json_string(w, <const uint8_t *>f.log_time.buf, f.log_time.len)
                fixed += 1
            if i == count:
                break
            if i or fixed:
                w_byte(w, b',')
            w_byte(w, b'"')
            w_str(w, fields[i].key)
            w_mem(w, b'":', 2)
            if fields[i].s == NULL:
                w_uint(w, fields[i].number)
            else:
                w_json_string(w, fields[i].s, fields[i].n)
        return w_mem(w, b"}\n", 2)
    if f.layout == 1:
        w_mem(w, b"time=", 5)
        w_go_quote(w, <const uint8_t *>f.log_time.buf, f.log_time.len)
        w_mem(w, b" level=debug msg=", 17)
        w_go_quote(w, <const uint8_t *>msg, msg_len)
    else:
        w_mem(w, b"\x1b[37mDEBU\x1b[0m[", 14)
        w_mem(w, f.log_time.buf, f.log_time.len)
        w_mem(w, b"] ", 2)
        w_mem(w, msg, msg_len)
        for i in range(<int>msg_len, 45):
            w_byte(w, b' ')
    for i in range(count):
        if f.layout == 1:
            w_byte(w, b' ')
            w_str(w, fields[i].key)
            w_byte(w, b'=')
        else:
            w_mem(w, b" \x1b[37m", 6)
            w_str(w, fields[i].key)
            w_mem(w, b"\x1b[0m=", 5)
        if fields[i].s == NULL:
            w_uint(w, fields[i].number)
        else:
            w_text_value(w, fields[i].s, fields[i].n)
    return w_byte(w, b'\n')


cdef inline void set_field(Field *field, const char *key, const uint8_t *s, Py_ssize_t n,
                           uint64_t number) noexcept:
    field.key = key
    field.s = s
    field.n = n
    field.number = number


cdef int w_processing(Formatter *f, Writer *w, const uint8_t *subject, Py_ssize_t subject_len,
                      const uint8_t *reply, Py_ssize_t reply_len,
                      Py_ssize_t size) except -1:
    """Debug "Processing JetStream message", written before the event line."""
    cdef Field fields[7]
    cdef AckMeta meta
    cdef Writer stamp
    memset(&meta, 0, sizeof(AckMeta))
    memset(&stamp, 0, sizeof(Writer))
    try:
        if reply_len and parse_ack_reply(reply, reply_len, &meta):
            w_local_rfc3339(&stamp, meta.timestamp_ns)
        else:
            reply = <const uint8_t *>EMPTY
        set_field(&fields[0], b"consumer", reply + meta.consumer_start,
                  meta.consumer_end - meta.consumer_start, 0)
        set_field(&fields[1], b"delivered", NULL, 0, meta.delivered)
        set_field(&fields[2], b"pending", NULL, 0, meta.pending)
        set_field(&fields[3], b"size", NULL, 0, <uint64_t>size)
        set_field(&fields[4], b"stream", reply + meta.stream_start,
                  meta.stream_end - meta.stream_start, 0)
        set_field(&fields[5], b"subject", subject, subject_len, 0)
        set_field(&fields[6], b"timestamp", <const uint8_t *>stamp.buf if stamp.len else
                  <const uint8_t *>EMPTY, stamp.len, 0)
        return w_entry(f, w, b"Processing JetStream message", fields, 7)
    finally:
        w_free(&stamp)


cdef int w_processed(Formatter *f, Writer *w, const uint8_t *subject, Py_ssize_t subject_len,
                     uint64_t delivered, const uint8_t *elapsed, Py_ssize_t elapsed_len) except -1:
    """Debug "Message processed and acknowledged", written after the acks."""
    cdef Field fields[3]
    set_field(&fields[0], b"delivered", NULL, 0, delivered)
    set_field(&fields[1], b"processing_time", elapsed, elapsed_len, 0)
    set_field(&fields[2], b"subject", subject, subject_len, 0)
    return w_entry(f, w, b"Message processed and acknowledged", fields, 3)


cdef void release_formatter(Formatter *f) noexcept:
    w_free(&f.log_time)
    w_free(&f.out)
    w_free(&f.head[0])
    w_free(&f.head[1])
    w_free(&f.tail)
    w_free(&f.scratch)
    w_free(&f.js_time)
    w_free(&f.dec.keys)
    w_free(&f.dec.tmp)
    w_free(&f.ev.timestamp)
    PyMem_Free(f.dec.items)
    PyMem_Free(f.dec.stack)
    memset(f, 0, sizeof(Formatter))
