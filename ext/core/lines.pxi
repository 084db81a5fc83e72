# Included by ../_core.pxi.  Twin: _formatting_py: "The handler and the three layouts"
# (format_message, _render).

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
