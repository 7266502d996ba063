# cython: language_level=3
"""Finished spans kept out of the garbage collector's generations (compiled builds only).

A finished span is a tuple that waits in the span queue until its batch is exported,
a few hundred milliseconds to seconds, unless the exporter writes spans as they end
(then the queue holds bytes, which the collector does not track). The collector tracks every new tuple: each
young collection walks the queued spans, those still queued at the next are moved
to an older generation, and once enough objects have reached the oldest one a full
collection walks everything the process holds, tens of milliseconds with the
orchestrator's thread stopped. Traced, the queued spans are about half of what a
young collection finds, and they set off the full collections.

A queued span is never garbage: the queue holds it, and the span worker's thread
holds the queue. The one way back to it from what it refers to runs through that
queue (its parent's record, the record's builder, the builder's queue), so once the
queue lets go of it (exported or dropped), its reference count alone frees it. So
the collector need not track it. :func:`untracked` stops the tracking (CPython's public
``PyObject_GC_UnTrack``); the references the span holds keep their objects alive
as before. A pure-Python build has no way to do this and leaves spans tracked.
"""

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void *op)


def untracked(tuple span):
    """``span``, no longer tracked by the garbage collector."""
    PyObject_GC_UnTrack(<void *>span)
    return span
