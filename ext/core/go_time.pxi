# Included by ../_core.pxi.  Twin: _formatting_py: "time" (format_event_timestamp, local_rfc3339,
# local_log_time).

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
