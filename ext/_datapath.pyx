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

from libc.string cimport memchr

__all__ = ["DataPath", "ProtocolViolation"]


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


cdef int64_t header_number(const uint8_t *s, Py_ssize_t n, const char *key,
                           Py_ssize_t key_len) noexcept:
    """The value of a header line `key: N` in a header block, or 0."""
    cdef Py_ssize_t line = 0, eol, j
    cdef int64_t value = 0
    while line < n:
        eol = find_crlf(s, line, n)
        if eol < 0:
            eol = n
        if (eol - line > key_len and memcmp(s + line, key, key_len) == 0
                and s[line + key_len] == b':'):
            j = line + key_len + 1
            while j < eol and s[j] == b' ':
                j += 1
            if j == eol:
                return 0
            while j < eol and 0x30 <= s[j] <= 0x39:
                value = value * 10 + (s[j] - 48)
                j += 1
            while j < eol and s[j] == b' ':
                j += 1
            return value if j == eol else 0
        line = eol + 2
    return 0


cdef class DataPath:
    """The frames of one pull subscription, taken out of the byte stream."""

    cdef Py_ssize_t sid
    cdef int layout
    cdef bint events
    cdef readonly bint debug
    cdef readonly uint64_t max_sequence  # the highest stream sequence of the last feed
    cdef Formatter fmt
    cdef Writer subjects   # the last feed's subjects, each followed by '\n' (debug only)
    cdef Writer tail       # a frame cut by the end of the last chunk
    cdef Writer work       # tail + chunk, when a feed had to join them
    cdef object held       # the chunk, when a feed read it in place
    cdef const uint8_t **payloads  # the last feed's payloads (valid until the next feed)
    cdef Py_ssize_t *payload_lens
    cdef Py_ssize_t cap_payloads
    cdef Writer other      # frames for nats-py
    cdef Writer acks
    cdef Writer replies    # the last feed's replies, each followed by '\n'

    def __cinit__(self, Py_ssize_t sid, int layout, bint events=True, bint debug=False):
        if layout not in (0, 1, 2):
            raise ValueError(f"unknown layout {layout!r}")
        memset(&self.fmt, 0, sizeof(Formatter))
        memset(&self.tail, 0, sizeof(Writer))
        memset(&self.work, 0, sizeof(Writer))
        self.payloads = NULL
        self.payload_lens = NULL
        self.cap_payloads = 0
        memset(&self.other, 0, sizeof(Writer))
        memset(&self.acks, 0, sizeof(Writer))
        memset(&self.replies, 0, sizeof(Writer))
        memset(&self.subjects, 0, sizeof(Writer))
        self.sid = sid
        self.debug = debug and events
        self.layout = layout
        self.events = events

    def __dealloc__(self):
        release_formatter(&self.fmt)
        w_free(&self.tail)
        w_free(&self.work)
        PyMem_Free(self.payloads)
        PyMem_Free(self.payload_lens)
        w_free(&self.other)
        w_free(&self.acks)
        w_free(&self.replies)
        w_free(&self.subjects)

    @property
    def sid(self):
        return self.sid

    def reset(self):
        """Forget a partial frame: the connection it came on is gone."""
        self.tail.len = 0

    def feed(self, data, long long now_ns):
        """(other frames, lines, acks, messages, structured, redelivered, statuses)."""
        cdef Py_buffer view
        cdef const uint8_t *s
        cdef Py_ssize_t n, pos = 0, eol, end, body, size, header_size
        cdef Span args[5]
        cdef int count, is_hmsg, has_reply
        cdef long messages = 0, structured = 0, redelivered = 0
        cdef list statuses = []
        cdef object status_line
        cdef AckMeta meta

        if not PyBytes_Check(data):
            data = bytes(data)  # held until the next feed: it must not change
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.held = None
            self.max_sequence = 0
            if self.tail.len:
                self.work.len = 0
                w_mem(&self.work, self.tail.buf, self.tail.len)
                w_mem(&self.work, view.buf, view.len)
                s = <const uint8_t *>self.work.buf
                n = self.work.len
            else:
                self.held = data
                s = <const uint8_t *>view.buf
                n = view.len
            self.other.len = 0
            self.acks.len = 0
            self.replies.len = 0
            self.subjects.len = 0
            begin_formatter(&self.fmt, self.layout, now_ns)
            while pos < n:
                eol = find_crlf(s, pos, n)
                if eol < 0:
                    break
                is_hmsg = eol - pos >= 5 and memcmp(s + pos, b"HMSG ", 5) == 0
                if not is_hmsg and not (eol - pos >= 4 and memcmp(s + pos, b"MSG ", 4) == 0):
                    w_mem(&self.other, s + pos, eol + 2 - pos)  # PING, PONG, +OK, -ERR, INFO
                    pos = eol + 2
                    continue
                count = split_args(s, pos + (5 if is_hmsg else 4), eol, args, 5)
                if count < 3 + is_hmsg or count > 4 + is_hmsg:
                    raise ProtocolViolation(
                        f"malformed {'HMSG' if is_hmsg else 'MSG'} line "
                        f"{PyBytes_FromStringAndSize(<const char *>s + pos, eol - pos)!r}")
                has_reply = count == 4 + is_hmsg
                size = parse_size(s, args[count - 1])
                header_size = parse_size(s, args[count - 2]) if is_hmsg else 0
                if size < 0 or header_size < 0 or header_size > size:
                    raise ProtocolViolation("malformed message size")
                end = eol + 2 + size + 2
                if end > n:
                    break  # the rest of this frame comes with the next chunk
                if parse_size(s, args[1]) != self.sid:
                    w_mem(&self.other, s + pos, end - pos)
                    pos = end
                    continue
                body = eol + 2
                pos = end
                if is_hmsg:
                    if (header_size >= 12 and memcmp(s + body, b"NATS/1.0 ", 9) == 0
                            and 0x30 <= s[body + 9] <= 0x39):
                        status_line = PyBytes_FromStringAndSize(
                            <const char *>s + body,
                            find_crlf(s, body, body + header_size) - body)
                        statuses.append(self._status(status_line, s + body, header_size))
                        continue
                    body += header_size
                    size -= header_size
                self._keep_payload(messages, s + body, size)
                w_mem(&self.replies, s + args[2].start, args[2].end - args[2].start
                      if has_reply else 0)
                w_byte(&self.replies, b'\n')
                w_mem(&self.acks, b"PUB ", 4)
                if has_reply:
                    w_mem(&self.acks, s + args[2].start, args[2].end - args[2].start)
                w_mem(&self.acks, b" 0\r\n\r\n", 6)
                messages += 1
                if self.debug:
                    w_mem(&self.subjects, s + args[0].start, args[0].end - args[0].start)
                    w_byte(&self.subjects, b'\n')
                    w_processing(&self.fmt, &self.fmt.out, s + args[0].start,
                                 args[0].end - args[0].start,
                                 s + args[2].start if has_reply else NULL,
                                 args[2].end - args[2].start if has_reply else 0, size)
                if self.events:
                    structured += format_message(
                        &self.fmt, s + args[0].start, args[0].end - args[0].start,
                        s + args[2].start if has_reply else NULL,
                        args[2].end - args[2].start if has_reply else 0,
                        s + body, size)
                if has_reply and parse_ack_reply(s + args[2].start, args[2].end - args[2].start,
                                                 &meta):
                    redelivered += meta.delivered > 1
                    if meta.sequence > self.max_sequence:
                        self.max_sequence = meta.sequence
            # keep the unfinished frame for the next chunk
            self.tail.len = 0
            if pos < n:
                w_mem(&self.tail, s + pos, n - pos)
            return (PyBytes_FromStringAndSize(self.other.buf, self.other.len),
                    PyBytes_FromStringAndSize(self.fmt.out.buf, self.fmt.out.len),
                    PyBytes_FromStringAndSize(self.acks.buf, self.acks.len),
                    messages, structured, redelivered, statuses)
        finally:
            PyBuffer_Release(&view)

    cdef int _keep_payload(self, Py_ssize_t index, const uint8_t *payload,
                           Py_ssize_t size) except -1:
        cdef Py_ssize_t cap
        if index >= self.cap_payloads:
            cap = max(64, 2 * self.cap_payloads)
            self.payloads = <const uint8_t **>PyMem_Realloc(self.payloads,
                                                            cap * sizeof(const uint8_t *))
            self.payload_lens = <Py_ssize_t *>PyMem_Realloc(self.payload_lens,
                                                            cap * sizeof(Py_ssize_t))
            if self.payloads == NULL or self.payload_lens == NULL:
                raise MemoryError()
            self.cap_payloads = cap
        self.payloads[index] = payload
        self.payload_lens[index] = size
        return 0

    def settle_failed(self, long max_deliver, nak_payload, Py_ssize_t excerpt=256):
        """The last feed could not be written: NAK each message, or TERM the
        ones at their last delivery.  (frames, [(sequence, delivered, excerpt)])."""
        cdef Writer w
        cdef AckMeta meta
        cdef Py_ssize_t start = 0, i, index = 0
        cdef bytes nak = bytes(nak_payload)
        cdef bytes size = str(len(nak)).encode()
        cdef list termed = []
        cdef bint last
        memset(&w, 0, sizeof(Writer))
        try:
            for i in range(self.replies.len):
                if self.replies.buf[i] != b'\n':
                    continue
                memset(&meta, 0, sizeof(AckMeta))
                parse_ack_reply(<const uint8_t *>self.replies.buf + start, i - start, &meta)
                last = max_deliver > 0 and meta.delivered >= <uint64_t>max_deliver
                w_mem(&w, b"PUB ", 4)
                w_mem(&w, self.replies.buf + start, i - start)
                if last:
                    w_mem(&w, b" 5\r\n+TERM\r\n", 11)
                    termed.append((meta.sequence, meta.delivered, PyBytes_FromStringAndSize(
                        <const char *>self.payloads[index],
                        min(self.payload_lens[index], excerpt))))
                else:
                    w_byte(&w, b' ')
                    w_mem(&w, PyBytes_AS_STRING(size), len(size))
                    w_mem(&w, b"\r\n", 2)
                    w_mem(&w, PyBytes_AS_STRING(nak), len(nak))
                    w_mem(&w, b"\r\n", 2)
                start = i + 1
                index += 1
            return PyBytes_FromStringAndSize(w.buf, w.len), termed
        finally:
            w_free(&w)

    cdef tuple _status(self, bytes first_line, const uint8_t *headers, Py_ssize_t n):
        parts = first_line.split(None, 2)
        description = parts[2].decode("utf-8", "replace") if len(parts) > 2 else ""
        return (int(parts[1]), description,
                header_number(headers, n, b"Nats-Pending-Messages", 21),
                header_number(headers, n, b"Nats-Pending-Bytes", 18))

    def processed(self, str elapsed, long long now_ns):
        """At debug level, "Message processed and acknowledged" for the last feed."""
        cdef Writer w
        cdef Py_ssize_t subject_start = 0, reply_start = 0, i = 0, j = 0
        cdef bytes elapsed_bytes = elapsed.encode()
        if not self.debug:
            return b""
        memset(&w, 0, sizeof(Writer))
        self.fmt.log_time.len = 0
        try:
            w_log_time(&self.fmt.log_time, now_ns)
            while i < self.subjects.len:
                if self.subjects.buf[i] == b'\n':
                    while self.replies.buf[j] != b'\n':
                        j += 1
                    w_processed(&self.fmt, &w, <const uint8_t *>self.subjects.buf + subject_start,
                                i - subject_start,
                                ack_delivered(<const uint8_t *>self.replies.buf + reply_start,
                                              j - reply_start),
                                <const uint8_t *>PyBytes_AS_STRING(elapsed_bytes),
                                len(elapsed_bytes))
                    subject_start = i + 1
                    j += 1
                    reply_start = j
                i += 1
            return PyBytes_FromStringAndSize(w.buf, w.len)
        finally:
            w_free(&w)

    def frames(self, payload):
        """A PUB frame with `payload` to each reply of the last feed (NAK, +WPI, +TERM)."""
        cdef Writer w
        cdef Py_ssize_t start = 0, i
        cdef bytes size = str(len(payload)).encode()
        cdef bytes body = bytes(payload)
        memset(&w, 0, sizeof(Writer))
        try:
            for i in range(self.replies.len):
                if self.replies.buf[i] == b'\n':
                    w_mem(&w, b"PUB ", 4)
                    w_mem(&w, self.replies.buf + start, i - start)
                    w_byte(&w, b' ')
                    w_mem(&w, PyBytes_AS_STRING(size), len(size))
                    w_mem(&w, b"\r\n", 2)
                    w_mem(&w, PyBytes_AS_STRING(body), len(body))
                    w_mem(&w, b"\r\n", 2)
                    start = i + 1
            return PyBytes_FromStringAndSize(w.buf, w.len)
        finally:
            w_free(&w)


cdef uint64_t ack_delivered(const uint8_t *reply, Py_ssize_t n) noexcept:
    cdef AckMeta meta
    if parse_ack_reply(reply, n, &meta):
        return meta.delivered
    return 0
