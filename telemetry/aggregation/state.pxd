# In a compiled build, the pair of cells a handoff or decision updates is a C
# structure whose fields are typed (series.pxd), so the fast paths that find it
# (handlers/table.pxd) update its cells without a lookup. The pure-Python build
# ignores this file.
from telemetry.aggregation.series cimport CounterCell, HistogramCell


cdef class CellPair:
    cdef public CounterCell counter
    cdef public HistogramCell histogram
