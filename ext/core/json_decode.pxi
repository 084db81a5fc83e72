# Included by ../_core.pxi.  Twin: _formatting_py: "encoding/json" (_Decoder, unquote,
# decode_event).

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
    cdef int high = 0
    out.a = <uint32_t>pos
    while pos < n:
        pos = <Py_ssize_t>ea_scan_string(s, pos, n, 0x22, 0x5C, &high)
        if high:
            flags = 0
        if pos >= n:
            break
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
        return INVALID  # the scan stops only at '"', '\\' and control bytes
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
        # a validated body has no control bytes: the scan stops at '\\' and >= 0x80
        i = <Py_ssize_t>ea_scan_plain(s, i, n, 0x5C, 0x5C, 0x5C, 0x5C, 0x5C)
        if i >= n:
            break
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
