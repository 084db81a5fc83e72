# Included by ../_core.pxi.  Twin: no twin: the pure twin builds str values; this is the buffer
# every C part writes into.

# ---------------------------------------------------------------------------
# Writer: a growing byte buffer
# ---------------------------------------------------------------------------

cdef struct Writer:
    char *buf
    Py_ssize_t len
    Py_ssize_t cap
    PyObject *owner  # a bytes object whose storage buf is (w_bytes_begin), or NULL


cdef int w_grow(Writer *w, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = w.cap * 2
    if cap < w.len + extra:
        cap = w.len + extra
    if cap < 256:
        cap = 256
    cdef char *buf
    if w.owner != NULL:
        if _PyBytes_Resize(&w.owner, cap) < 0:
            w.owner = NULL  # freed by the failed resize
            w.buf = NULL
            w.len = w.cap = 0
            raise MemoryError()
        buf = PyBytes_AS_STRING(<object>w.owner)
    else:
        buf = <char *>PyMem_Realloc(w.buf, cap)
        if buf == NULL:
            raise MemoryError()
    w.buf = buf
    w.cap = cap
    return 0


cdef int w_bytes_begin(Writer *w, Py_ssize_t cap) except -1:
    """Write straight into a new bytes object of ``cap`` bytes (grown as
    needed): w_bytes_take hands it over without copying the lines again."""
    w_free(w)
    if cap < 256:
        cap = 256
    cdef object owner = PyBytes_FromStringAndSize(NULL, cap)
    Py_INCREF(owner)  # the writer's own reference, given up by w_bytes_take
    w.owner = <PyObject *>owner
    w.buf = PyBytes_AS_STRING(<object>w.owner)
    w.cap = cap
    return 0


cdef object w_bytes_take(Writer *w):
    """The bytes written since w_bytes_begin; the writer is empty after.
    Shrinking a large block is done in place by the allocator."""
    if w.owner == NULL:
        return PyBytes_FromStringAndSize(w.buf, w.len)
    if _PyBytes_Resize(&w.owner, w.len) < 0:
        w.owner = NULL
        w.buf = NULL
        w.len = w.cap = 0
        raise MemoryError()
    cdef object taken = <object>w.owner
    Py_DECREF(taken)  # the writer's reference passes to `taken`
    w.owner = NULL
    w.buf = NULL
    w.len = w.cap = 0
    return taken


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
    if w.owner != NULL:
        Py_XDECREF(w.owner)
        w.owner = NULL
    else:
        PyMem_Free(w.buf)
    w.buf = NULL
    w.len = 0
    w.cap = 0
