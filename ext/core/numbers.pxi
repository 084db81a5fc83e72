# Included by ../_core.pxi.  Twin: _formatting_py: shortest_digits, go_json_float,
# go_sprint_float.

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
