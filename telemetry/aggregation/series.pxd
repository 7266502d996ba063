# The cells as C structures in a compiled build: the same classes as series.py, with
# their fields typed, so the per-event updates read and write them without a
# dictionary lookup. The pure-Python build ignores this file.
cimport cython

cdef bint _COMPILED

@cython.locals(low=Py_ssize_t, high=Py_ssize_t, middle=Py_ssize_t, bound=double)
cpdef Py_ssize_t bucket_index(tuple bounds, double value)


cdef class CounterCell:
    cdef public double value, created, updated
    cpdef inc(self, double amount, double now)


cdef class GaugeCell(CounterCell):
    cpdef set(self, double value, double now)


cdef class ExemplarSource:
    cdef public object ids
    cdef public double at


cdef class HistogramCell:
    cdef public tuple bounds
    cdef public list counts, reservoir
    cdef public double sum, created, updated, min, max
    cdef public Py_ssize_t reservoir_size, interval_count
    cdef public object exemplars
    cdef public ExemplarSource exemplar_source
    cdef public bint tracks_extremes

    # The bucket index, the reservoir's arithmetic and the random slot as C numbers:
    # only the kept value is boxed.
    @cython.locals(index=Py_ssize_t, size=Py_ssize_t, count=Py_ssize_t, slot=double,
                   reservoir=list, source=ExemplarSource)
    cpdef observe(self, double value, double now)
    cpdef keep_exemplar(self, Py_ssize_t index, double value, ExemplarSource source)
