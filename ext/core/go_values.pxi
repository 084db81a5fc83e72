# Included by ../_core.pxi.  Twin: _formatting_py: go_json_value, go_sprint.

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
