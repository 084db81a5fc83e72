# Included by ../_core.pxi.  Twin: no twin: the pure twin builds str values; this is the buffer
# every C part writes into.

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
