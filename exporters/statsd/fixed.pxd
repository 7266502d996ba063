# In a compiled build, the loop over a series' values runs in C: the values are
# doubles, the thousandths a 64-bit integer, and the text is written through a
# pointer into the output buffer. The pure-Python build ignores this file (and formats
# with "%.3f" instead: exporters/statsd/timers.py).
cimport cython

cdef double _LIMIT, _MARGIN
cdef unsigned char _NEWLINE, _MINUS, _POINT, _ZERO
cdef Py_ssize_t _VALUE_ROOM


@cython.locals(count=Py_ssize_t, out=bytearray, buf="unsigned char *", cap=Py_ssize_t,
               pos=Py_ssize_t, encoded=dict, tail_bytes=bytes,
               tail_chars="const unsigned char *", tail_size=Py_ssize_t, i=Py_ssize_t,
               j=Py_ssize_t, x=double)
cpdef str fixed_text(values, double scale, templates)


@cython.locals(negative=bint, a=double, p=double, fraction=double, margin=double,
               units="long long", whole="long long", thousandths="long long",
               decimals="long long", rest="long long", tens="long long",
               last="long long", digits=Py_ssize_t, at=Py_ssize_t)
cdef Py_ssize_t _write_value(unsigned char *buf, Py_ssize_t pos, double x)


@cython.locals(text=bytes, size=Py_ssize_t, j=Py_ssize_t)
cdef Py_ssize_t _write_exact(unsigned char *buf, Py_ssize_t pos, double x)
