# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""Compiled twin of ``events_audit._formatting_py``: same names, same bytes.

The pure-Python module is the readable specification and documents each Go
rule; this one does the same work over raw buffers.  Per message it parses
the ack reply, decodes the payload the way Go's ``json.Unmarshal`` decodes it
into the Event struct (validation, case-insensitive keys, last duplicate
wins, the merge of a repeated ``data``), and writes the logrus line straight
into one growing buffer.  The only Python object made per batch is the
result.
"""

include "_core.pxi"

LAYOUT_JSON = 0
LAYOUT_TEXT = 1
LAYOUT_COLOR = 2

__all__ = ["LAYOUT_COLOR", "LAYOUT_JSON", "LAYOUT_TEXT", "format_batch"]


cdef int text_arg(object value, const uint8_t **data, Py_ssize_t *size,
                  list keep) except -1:
    """A subject or reply (str or bytes) as UTF-8 bytes."""
    cdef const char *utf8
    if PyBytes_Check(value):
        data[0] = <const uint8_t *>PyBytes_AS_STRING(value)
        size[0] = PyBytes_GET_SIZE(value)
        return 0
    if not PyUnicode_Check(value):
        raise TypeError(f"subjects and replies must be str or bytes, not {type(value).__name__}")
    try:
        utf8 = PyUnicode_AsUTF8AndSize(value, size)
    except UnicodeEncodeError:
        # invalid bytes carried as surrogates, like the pure twin
        encoded = (<str>value).encode("utf-8", "surrogateescape")
        keep.append(encoded)
        data[0] = <const uint8_t *>PyBytes_AS_STRING(encoded)
        size[0] = PyBytes_GET_SIZE(encoded)
        return 0
    data[0] = <const uint8_t *>utf8
    return 0


# One formatter's buffers are kept between batches, so a batch writes into
# memory that is already mapped; a nested call (only possible through a
# payload's buffer protocol) gets fresh ones.
cdef Formatter CACHED
cdef bint CACHED_BUSY = False
memset(&CACHED, 0, sizeof(Formatter))

cdef enum:
    KEEP_LIMIT = 64 * 1024 * 1024  # larger buffers go back to the system


cdef void recycle_formatter(Formatter *f) noexcept:
    if (f.out.cap > KEEP_LIMIT or f.scratch.cap > KEEP_LIMIT or f.dec.keys.cap > KEEP_LIMIT
            or f.dec.tmp.cap > KEEP_LIMIT or f.dec.cap_items * sizeof(Item) > KEEP_LIMIT
            or f.dec.cap_stack * sizeof(Item) > KEEP_LIMIT):
        release_formatter(f)


def format_batch(subjects, replies, payloads, long long now_ns, int layout):
    """The log lines of a whole batch, one per message, as one bytes object.

    All lines carry the same entry time, ``now_ns`` (Unix ns) in local time.
    """
    cdef Formatter local
    cdef Formatter *f
    cdef bint cached = not CACHED_BUSY
    cdef Py_buffer view
    cdef Py_ssize_t i, count
    cdef const uint8_t *subject
    cdef const uint8_t *reply
    cdef Py_ssize_t subject_len, reply_len
    cdef list keep = []
    cdef object subject_seq = PySequence_Fast(subjects, "subjects must be a sequence")
    cdef object reply_seq = PySequence_Fast(replies, "replies must be a sequence")
    cdef object payload_seq = PySequence_Fast(payloads, "payloads must be a sequence")
    cdef object payload
    count = PySequence_Fast_GET_SIZE(subject_seq)
    if (PySequence_Fast_GET_SIZE(reply_seq) != count
            or PySequence_Fast_GET_SIZE(payload_seq) != count):
        raise ValueError("subjects, replies and payloads differ in length")
    if layout not in (0, 1, 2):
        raise ValueError(f"unknown layout {layout!r}")
    global CACHED_BUSY
    if cached:
        f = &CACHED
        CACHED_BUSY = True
    else:
        memset(&local, 0, sizeof(Formatter))
        f = &local
    try:
        begin_formatter(f, layout, now_ns)
        for i in range(count):
            text_arg(<object>PySequence_Fast_GET_ITEM(subject_seq, i), &subject, &subject_len,
                     keep)
            text_arg(<object>PySequence_Fast_GET_ITEM(reply_seq, i), &reply, &reply_len, keep)
            payload = <object>PySequence_Fast_GET_ITEM(payload_seq, i)
            if PyBytes_Check(payload):
                if PyBytes_GET_SIZE(payload) >= 0xFFFFFFFF:
                    raise OverflowError("payload larger than 4 GiB")
                format_message(f, subject, subject_len, reply, reply_len,
                               <const uint8_t *>PyBytes_AS_STRING(payload),
                               PyBytes_GET_SIZE(payload))
                continue
            PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
            try:
                if view.len >= 0xFFFFFFFF:
                    raise OverflowError("payload larger than 4 GiB")
                format_message(f, subject, subject_len, reply, reply_len,
                               <const uint8_t *>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        return PyBytes_FromStringAndSize(f.out.buf, f.out.len)
    finally:
        if cached:
            recycle_formatter(f)
            CACHED_BUSY = False
        else:
            release_formatter(f)
