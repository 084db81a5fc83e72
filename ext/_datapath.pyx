# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""Compiled twin of ``events_audit._datapath_py``: the pull subscription's
frames, parsed, formatted and acked batch-wise in C.

One ``feed`` per chunk read from the socket: the control lines are scanned
in place, data messages of our subscription go straight from the chunk to
the line formatter and the ack buffer, and every other frame is copied out
for nats-py.  No Python object is made per message.
"""

include "_core.pxi"
include "core/line_checksums.pxi"

from libc.string cimport memchr, memcpy, memmove

__all__ = [
    "DataPath",
    "ProtocolViolation",
    "line_checksums",
    "processed_lines",
    "reply_frames",
    "settle_frames",
]


class ProtocolViolation(ValueError):
    """The byte stream is not the NATS protocol."""


cdef inline Py_ssize_t find_crlf(const uint8_t *s, Py_ssize_t start, Py_ssize_t n) noexcept:
    cdef const uint8_t *p
    cdef Py_ssize_t i = start
    while i + 1 < n:
        p = <const uint8_t *>memchr(s + i, b'\r', n - i - 1)
        if p == NULL:
            return -1
        i = p - s
        if s[i + 1] == b'\n':
            return i
        i += 1
    return -1


cdef struct Span:
    Py_ssize_t start
    Py_ssize_t end


cdef int split_args(const uint8_t *s, Py_ssize_t start, Py_ssize_t end, Span *args,
                    int max_args) noexcept:
    """Space or tab separated arguments of a control line; their count, or
    max_args + 1 when there are more."""
    cdef int count = 0
    cdef Py_ssize_t i = start
    while True:
        while i < end and (s[i] == b' ' or s[i] == b'\t'):
            i += 1
        if i >= end:
            return count
        if count == max_args:
            return max_args + 1
        args[count].start = i
        while i < end and s[i] != b' ' and s[i] != b'\t':
            i += 1
        args[count].end = i
        count += 1


cdef int64_t parse_size(const uint8_t *s, Span span) noexcept:
    cdef int64_t value = 0
    cdef Py_ssize_t i
    if span.end - span.start > 12 or span.end == span.start:
        return -1
    for i in range(span.start, span.end):
        if not 0x30 <= s[i] <= 0x39:
            return -1
        value = value * 10 + (s[i] - 48)
    return value


cdef Py_ssize_t frame_length(const uint8_t *s, Py_ssize_t pos, Py_ssize_t eol) noexcept:
    """Bytes of the MSG/HMSG frame whose control line is s[pos:eol], or 0 when
    it is not one (feed() then tells what is wrong with it)."""
    cdef Span args[5]
    cdef int count
    cdef int is_hmsg = eol - pos >= 5 and memcmp(s + pos, b"HMSG ", 5) == 0
    cdef int64_t size
    if not is_hmsg and not (eol - pos >= 4 and memcmp(s + pos, b"MSG ", 4) == 0):
        return 0
    count = split_args(s, pos + (5 if is_hmsg else 4), eol, args, 5)
    if count < 3 + is_hmsg or count > 4 + is_hmsg:
        return 0
    size = parse_size(s, args[count - 1])
    return 0 if size < 0 else eol + 2 + size + 2 - pos


cdef Py_ssize_t header_value(const uint8_t *s, Py_ssize_t n, const char *key,
                             Py_ssize_t key_len, bint last,
                             Py_ssize_t *value_start) noexcept:
    """The length of the value of the first (or last) header line
    `key: value` in a header block, spaces trimmed, its start in
    value_start; -1 when there is none."""
    cdef Py_ssize_t line = 0, eol, start, end, found = -1
    while line < n:
        eol = find_crlf(s, line, n)
        if eol < 0:
            eol = n
        if (eol - line > key_len and memcmp(s + line, key, key_len) == 0
                and s[line + key_len] == b':'):
            start = line + key_len + 1
            end = eol
            while start < end and s[start] == b' ':
                start += 1
            while end > start and s[end - 1] == b' ':
                end -= 1
            value_start[0] = start
            found = end - start
            if not last:
                return found
        line = eol + 2
    return found


cdef int64_t header_number(const uint8_t *s, Py_ssize_t n, const char *key,
                           Py_ssize_t key_len) noexcept:
    """The value of the first header line `key: N` in a header block, or 0."""
    cdef Py_ssize_t start = 0, j
    cdef Py_ssize_t length = header_value(s, n, key, key_len, False, &start)
    cdef int64_t value = 0
    if length <= 0 or length > 18:
        return 0
    for j in range(start, start + length):
        if not 0x30 <= s[j] <= 0x39:
            return 0
        value = value * 10 + (s[j] - 48)
    return value


cdef enum:
    PIN_ID_MAX = 64  # a pin id is a 22-character NUID


cdef struct Counts:  # of one feed
    long messages
    long structured
    long redelivered
    uint64_t max_sequence
    uint64_t min_sequence  # 0: none


cdef class DataPath:
    """The frames of one pull subscription, taken out of the byte stream."""

    cdef Py_ssize_t sid
    cdef int layout
    cdef bint events
    cdef readonly bint debug
    cdef long max_deliver   # messages at this delivery are reported with an excerpt
    cdef Formatter fmt
    cdef Writer tail       # a frame cut by the end of the last chunk, then the next chunks
    cdef Py_ssize_t need   # bytes of the frame in tail when its size is known, else 0
    cdef Writer other      # frames for nats-py
    cdef Writer acks
    cdef Writer replies    # each followed by '\n'
    cdef Writer subjects   # each followed by '\n' (debug only)
    cdef char pin[PIN_ID_MAX]  # see pin_id
    cdef Py_ssize_t pin_len

    def __cinit__(self, Py_ssize_t sid, int layout, bint events=True, bint debug=False,
                  long max_deliver=-1):
        if layout not in (0, 1, 2):
            raise ValueError(f"unknown layout {layout!r}")
        memset(&self.fmt, 0, sizeof(Formatter))
        memset(&self.tail, 0, sizeof(Writer))
        memset(&self.other, 0, sizeof(Writer))
        memset(&self.acks, 0, sizeof(Writer))
        memset(&self.replies, 0, sizeof(Writer))
        memset(&self.subjects, 0, sizeof(Writer))
        self.sid = sid
        self.layout = layout
        self.events = events
        self.debug = debug and events
        self.max_deliver = max_deliver

    def __dealloc__(self):
        release_formatter(&self.fmt)
        w_free(&self.tail)
        w_free(&self.other)
        w_free(&self.acks)
        w_free(&self.replies)
        w_free(&self.subjects)

    @property
    def sid(self):
        return self.sid

    @property
    def pin_id(self):
        """The Nats-Pin-Id header of the last data message with headers in
        the last feed (b"" if none): the server's pin with --audit-ha=pinned."""
        return PyBytes_FromStringAndSize(self.pin, self.pin_len)

    def reset(self):
        """Forget a partial frame: the connection it came on is gone."""
        self.tail.len = 0
        self.need = 0

    def feed(self, data, long long now_ns):
        """One chunk: (other frames, lines, acks, replies, subjects, messages,
        structured, redelivered, max and min sequence, last chances, statuses).

        replies/subjects: the data messages' replies (and, at debug level,
        subjects) each followed by a newline, for reply_frames, settle_frames
        and processed_lines.  last chances: (sequence, delivered, excerpt) of
        the messages at their last delivery (--audit-max-deliver).
        """
        cdef Py_ssize_t taken
        return self._feed(data, now_ns, True, &taken)

    def feed_frames(self, data, long long now_ns):
        """``feed``'s tuple and then ``taken``: the bytes of ``data`` used.
        The frame that ``data`` ends inside is not kept here but left to the
        caller, who gives it again with what follows (a reader that keeps
        the socket's bytes in one buffer: a large frame is not copied to be
        made whole).  A frame begun in an earlier ``feed`` is still completed
        from ``data`` first."""
        cdef Py_ssize_t taken
        fed = self._feed(data, now_ns, False, &taken)
        return fed + (taken,)

    cdef tuple _feed(self, data, long long now_ns, bint keep, Py_ssize_t *taken):
        cdef Py_buffer view
        cdef const uint8_t *s
        cdef Py_ssize_t n, start = 0, pos, eol
        cdef Counts counts
        cdef list statuses = []
        cdef list last_chances = []

        memset(&counts, 0, sizeof(Counts))
        self.pin_len = 0
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            s = <const uint8_t *>view.buf
            n = view.len
            taken[0] = n
            if self.tail.len:
                # A frame cut by the last chunk: append only what completes it
                # (the rest is parsed in place), or all when even its control
                # line was cut (short).  A large frame comes in many chunks and
                # is looked at again only once it can be whole.
                start = min(self.need - self.tail.len, n) if self.need else n
                w_mem(&self.tail, s, start)
                if self.tail.len < self.need:
                    return (b"", b"", b"", b"", b"", 0, 0, 0, 0, 0, [], [])
            self.other.len = 0
            self.acks.len = 0
            self.replies.len = 0
            self.subjects.len = 0
            begin_formatter(&self.fmt, self.layout, now_ns)
            # the lines go into a bytes object handed over as it is: room for
            # lines a little longer than the frames, grown when not enough
            w_bytes_begin(&self.fmt.out, self.tail.len + (n - start) * 5 // 4 + 4096)
            if self.tail.len:
                pos = self._frames(<const uint8_t *>self.tail.buf, 0, self.tail.len, &counts,
                                   statuses, last_chances)
                memmove(self.tail.buf, self.tail.buf + pos, self.tail.len - pos)
                self.tail.len -= pos
            if self.tail.len:  # (not when the tail was one whole frame)
                w_mem(&self.tail, s + start, n - start)
            elif start < n:  # on with the chunk, in place
                pos = self._frames(s, start, n, &counts, statuses, last_chances)
                if keep:
                    w_mem(&self.tail, s + pos, n - pos)
                else:
                    taken[0] = pos  # the caller keeps the rest
            # how long the unfinished frame is once its control line is whole
            self.need = 0
            if self.tail.len:
                eol = find_crlf(<const uint8_t *>self.tail.buf, 0, self.tail.len)
                if eol >= 0:
                    self.need = frame_length(<const uint8_t *>self.tail.buf, 0, eol)
            return (PyBytes_FromStringAndSize(self.other.buf, self.other.len),
                    w_bytes_take(&self.fmt.out),
                    PyBytes_FromStringAndSize(self.acks.buf, self.acks.len),
                    PyBytes_FromStringAndSize(self.replies.buf, self.replies.len),
                    PyBytes_FromStringAndSize(self.subjects.buf, self.subjects.len),
                    counts.messages, counts.structured, counts.redelivered,
                    counts.max_sequence, counts.min_sequence, last_chances, statuses)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _frames(self, const uint8_t *s, Py_ssize_t pos, Py_ssize_t n,
                            Counts *counts, list statuses, list last_chances) except -1:
        """Take the whole frames of s[pos:n]; where the first unfinished one starts."""
        cdef Py_ssize_t eol, end, body, size, header_size, header_end, pin_len
        cdef Py_ssize_t pin_start = 0, last_headers = -1, last_headers_size = 0
        cdef Span args[5]
        cdef int count, is_hmsg, has_reply
        cdef AckMeta meta
        while pos < n:
            eol = find_crlf(s, pos, n)
            if eol < 0:
                break
            is_hmsg = eol - pos >= 5 and memcmp(s + pos, b"HMSG ", 5) == 0
            if not is_hmsg and not (eol - pos >= 4 and memcmp(s + pos, b"MSG ", 4) == 0):
                w_mem(&self.other, s + pos, eol + 2 - pos)  # PING, PONG, +OK, -ERR, INFO
                pos = eol + 2
                continue
            if memchr(s + pos, b'\n', eol - pos) != NULL:
                raise ProtocolViolation("a line break inside a control line")
            count = split_args(s, pos + (5 if is_hmsg else 4), eol, args, 5)
            if count < 3 + is_hmsg or count > 4 + is_hmsg:
                raise ProtocolViolation(
                    f"malformed {'HMSG' if is_hmsg else 'MSG'} line "
                    f"{PyBytes_FromStringAndSize(<const char *>s + pos, eol - pos)!r}")
            has_reply = count == 4 + is_hmsg
            size = parse_size(s, args[count - 1])
            header_size = parse_size(s, args[count - 2]) if is_hmsg else 0
            if size < 0 or header_size < 0 or header_size > size or parse_size(
                    s, args[1]) < 0:
                raise ProtocolViolation("malformed sid or size")
            end = eol + 2 + size + 2
            if end > n:
                break  # the rest of this frame comes with the next chunks
            if parse_size(s, args[1]) != self.sid:
                w_mem(&self.other, s + pos, end - pos)
                pos = end
                continue
            body = eol + 2
            pos = end
            if is_hmsg:
                if header_size >= 12 and memcmp(s + body, b"NATS/1.0 ", 9) == 0:
                    header_end = find_crlf(s, body, body + header_size)
                    if header_end < 0:
                        raise ProtocolViolation("a status header without CRLF")
                    statuses.append(status_of(s + body, header_end - body, header_size))
                    continue
                last_headers, last_headers_size = body, header_size
                body += header_size
                size -= header_size
            w_mem(&self.replies, s + args[2].start, args[2].end - args[2].start
                  if has_reply else 0)
            w_byte(&self.replies, b'\n')
            w_mem(&self.acks, b"PUB ", 4)
            if has_reply:
                w_mem(&self.acks, s + args[2].start, args[2].end - args[2].start)
            w_mem(&self.acks, b" 0\r\n\r\n", 6)
            counts.messages += 1
            if self.debug:
                w_mem(&self.subjects, s + args[0].start, args[0].end - args[0].start)
                w_byte(&self.subjects, b'\n')
                w_processing(&self.fmt, &self.fmt.out, s + args[0].start,
                             args[0].end - args[0].start,
                             s + args[2].start if has_reply else NULL,
                             args[2].end - args[2].start if has_reply else 0, size)
            if self.events:
                counts.structured += format_message(
                    &self.fmt, s + args[0].start, args[0].end - args[0].start,
                    s + args[2].start if has_reply else NULL,
                    args[2].end - args[2].start if has_reply else 0,
                    s + body, size)
            if has_reply and parse_ack_reply(s + args[2].start, args[2].end - args[2].start,
                                             &meta):
                counts.redelivered += meta.delivered > 1
                if meta.sequence > counts.max_sequence:
                    counts.max_sequence = meta.sequence
                if counts.min_sequence == 0 or meta.sequence < counts.min_sequence:
                    counts.min_sequence = meta.sequence
                if self.max_deliver > 0 and meta.delivered >= <uint64_t>self.max_deliver:
                    last_chances.append((meta.sequence, meta.delivered,
                                         PyBytes_FromStringAndSize(
                                             <const char *>s + body,
                                             min(size, EXCERPT_BYTES))))
        if last_headers >= 0:  # only the last one counts: looked at once
            pin_len = header_value(s + last_headers, last_headers_size, b"Nats-Pin-Id", 11,
                                   True, &pin_start)
            self.pin_len = pin_len if 0 <= pin_len <= PIN_ID_MAX else 0
            memcpy(self.pin, s + last_headers + pin_start, self.pin_len)
        return pos


cdef enum:
    EXCERPT_BYTES = 256


cdef tuple status_of(const uint8_t *headers, Py_ssize_t line_len, Py_ssize_t n):
    """(code, description, pending messages, pending bytes) of a status block;
    its first line is "NATS/1.0 <code> <description>"."""
    cdef Py_ssize_t i = 9
    cdef int code = 0
    while i < line_len and i < 12 and 0x30 <= headers[i] <= 0x39:
        code = code * 10 + (headers[i] - 48)
        i += 1
    if i != 12 or (i < line_len and headers[i] != b' '):
        raise ProtocolViolation("a status without a three-digit code")
    while i < line_len and headers[i] == b' ':
        i += 1
    return (code, PyBytes_FromStringAndSize(<const char *>headers + i, line_len - i).decode(
                "utf-8", "replace"),
            header_number(headers, n, b"Nats-Pending-Messages", 21),
            header_number(headers, n, b"Nats-Pending-Bytes", 18))


def reply_frames(bytes replies not None, bytes payload not None):
    """A PUB frame with `payload` (+WPI, -NAK ...) to each reply of a feed."""
    return settle_frames(replies, 0, payload)


def settle_frames(bytes replies not None, max_deliver, bytes nak_payload not None):
    """After a failed write: `nak_payload` to each reply of a feed, but +TERM
    to those at their last delivery (max_deliver > 0)."""
    if not isinstance(max_deliver, int):  # a C long argument would truncate 2.5
        raise TypeError(f"max_deliver must be an int, not {type(max_deliver).__name__}")
    cdef long last = max_deliver
    cdef Writer w
    cdef AckMeta meta
    cdef const char *r = PyBytes_AS_STRING(replies)
    cdef Py_ssize_t n = len(replies), start = 0, i
    cdef bytes payload = nak_payload
    cdef bytes size = str(len(payload)).encode()
    memset(&w, 0, sizeof(Writer))
    try:
        for i in range(n):
            if r[i] != b'\n':
                continue
            w_mem(&w, b"PUB ", 4)
            w_mem(&w, r + start, i - start)
            if (last > 0 and parse_ack_reply(<const uint8_t *>r + start, i - start, &meta)
                    and meta.delivered >= <uint64_t>last):
                w_mem(&w, b" 5\r\n+TERM\r\n", 11)
            else:
                w_byte(&w, b' ')
                w_mem(&w, PyBytes_AS_STRING(size), len(size))
                w_mem(&w, b"\r\n", 2)
                w_mem(&w, PyBytes_AS_STRING(payload), len(payload))
                w_mem(&w, b"\r\n", 2)
            start = i + 1
        return PyBytes_FromStringAndSize(w.buf, w.len)
    finally:
        w_free(&w)


def processed_lines(int layout, bytes subjects not None, bytes replies not None,
                    str elapsed not None,
                    long long now_ns):
    """The original's debug "Message processed and acknowledged" per message."""
    cdef Formatter f
    cdef Writer w
    cdef const char *sub = PyBytes_AS_STRING(subjects)
    cdef const char *rep = PyBytes_AS_STRING(replies)
    cdef Py_ssize_t i = 0, j = 0, subject_start = 0, reply_start = 0
    cdef Py_ssize_t n = len(subjects), m = len(replies)
    cdef bytes elapsed_bytes = elapsed.encode()
    memset(&f, 0, sizeof(Formatter))
    memset(&w, 0, sizeof(Writer))
    try:
        f.layout = layout
        w_log_time(&f.log_time, now_ns)
        while i < n:
            if sub[i] == b'\n':
                while j < m and rep[j] != b'\n':
                    j += 1
                w_processed(&f, &w, <const uint8_t *>sub + subject_start, i - subject_start,
                            ack_delivered(<const uint8_t *>rep + reply_start, j - reply_start),
                            <const uint8_t *>PyBytes_AS_STRING(elapsed_bytes),
                            len(elapsed_bytes))
                subject_start = i + 1
                j += 1
                reply_start = j
            i += 1
        return PyBytes_FromStringAndSize(w.buf, w.len)
    finally:
        w_free(&w)
        release_formatter(&f)


cdef uint64_t ack_delivered(const uint8_t *reply, Py_ssize_t n) noexcept:
    cdef AckMeta meta
    if parse_ack_reply(reply, n, &meta):
        return meta.delivered
    return 0
