# Included by ../_core.pxi.  Twin: _formatting_py: parse_ack_reply.

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
