# Shared C core of the compiled modules (_formatting, _datapath): included,
# not imported, so the hot path stays inside one module with no calls
# through Python.  One file per concern in core/, each named after the part
# of the readable specification, _formatting_py.py, that it mirrors.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_ITEM, PySequence_Fast_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memset, strcmp

from events_audit._unicode_tables import GO_PRINTABLE_RANGES as _GO_PRINTABLE_RANGES

cdef extern from "Python.h":
    ctypedef struct PyObject
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t newsize)
    void Py_INCREF(object o)
    void Py_DECREF(object o)
    void Py_XDECREF(PyObject *o)
    double PyOS_string_to_double(const char *s, char **endptr,
                                 PyObject *overflow_exception) except? -1.0
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int *ptype) except NULL
    bint PyBytes_Check(object o)
    bint PyUnicode_Check(object o)

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct tm:
        int tm_sec
        int tm_min
        int tm_hour
        int tm_mday
        int tm_mon
        int tm_year
        long tm_gmtoff
    tm *localtime_r(const time_t *timep, tm *result)

cdef enum:
    MAX_NESTING_DEPTH = 10000  # Go's encoding/json scanner limit

include "core/writer.pxi"
include "core/go_strings.pxi"
include "core/escaping.pxi"
include "core/numbers.pxi"
include "core/go_time.pxi"
include "core/ack_metadata.pxi"
include "core/json_decode.pxi"
include "core/go_values.pxi"
include "core/lines.pxi"
