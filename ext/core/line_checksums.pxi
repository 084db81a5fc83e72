# The digest's locator (twin: ``_datapath_py.line_checksums``): zlib's CRC-32
# of every line of a write, newline included, 4 bytes little-endian each, in
# one bytes object.  Compiled because it runs per line on every write while
# the digest is on (the chained SHA-256 runs once per write, in hashlib).

from libc.string cimport memchr
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

cdef extern from "zlib.h" nogil:
    unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int size)


def line_checksums(data):
    """CRC-32 of each line of ``data`` (a last line without a newline too)."""
    cdef const unsigned char[::1] view = data
    cdef Py_ssize_t n = view.shape[0]
    cdef Py_ssize_t lines = 0, start = 0, end
    cdef const unsigned char *base
    cdef const unsigned char *hit
    cdef unsigned char *out
    cdef unsigned long crc
    if n == 0:
        return b""
    base = &view[0]
    while start < n:
        hit = <const unsigned char *>memchr(base + start, b'\n', n - start)
        start = n if hit == NULL else hit - base + 1
        lines += 1
    result = PyBytes_FromStringAndSize(NULL, 4 * lines)
    out = <unsigned char *>PyBytes_AS_STRING(result)
    start = 0
    with nogil:
        while start < n:
            hit = <const unsigned char *>memchr(base + start, b'\n', n - start)
            end = n if hit == NULL else hit - base + 1
            crc = crc32(0, base + start, <unsigned int>(end - start))
            out[0] = crc & 0xFF
            out[1] = (crc >> 8) & 0xFF
            out[2] = (crc >> 16) & 0xFF
            out[3] = (crc >> 24) & 0xFF
            out += 4
            start = end
    return result
