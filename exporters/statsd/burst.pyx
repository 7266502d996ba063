# cython: language_level=3
"""Several datagrams sent with one release of the GIL (compiled builds only).

Each ``socket.send`` lets the GIL go for its system call and then takes it back.
While another thread runs Python (an orchestrator sending events), taking it back
means waiting for that thread to drop it: a few context switches, about 40 us of CPU
for a datagram whose system call takes 4. :func:`send_datagrams` sends a burst of
them in order, checking after each whether it was refused (``SO_ERROR``, as
:meth:`exporters.statsd.transport.UdpTransport.send` does), with the GIL released
once. A pure-Python build sends them one by one.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport errno
from libc.stdlib cimport free, malloc


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ssize_t send(int fd, const void *buf, size_t size, int flags)
    int getsockopt(int fd, int level, int name, void *value, socklen_t *size)
    int SOL_SOCKET
    int SO_ERROR
    int MSG_DONTWAIT


def send_datagrams(int fd, tuple payloads):
    """Send each of ``payloads`` (bytes) as one datagram on the connected socket
    ``fd``, in order, until one fails or is refused.

    Returns ``(sent, error)``: how many went out, and 0 or the ``errno`` of the
    first that did not (``EAGAIN`` when the send buffer is full).
    """
    cdef Py_ssize_t count = len(payloads), index, sent = 0
    cdef const char **data = <const char **>malloc(count * sizeof(char *) + 1)
    cdef size_t *sizes = <size_t *>malloc(count * sizeof(size_t) + 1)
    cdef int error = 0, pending = 0
    cdef socklen_t size
    cdef bytes payload
    if data == NULL or sizes == NULL:
        free(data)
        free(sizes)
        raise MemoryError()
    try:
        for index in range(count):
            payload = payloads[index]  # the tuple keeps every payload alive
            data[index] = PyBytes_AS_STRING(payload)
            sizes[index] = <size_t>PyBytes_GET_SIZE(payload)
        with nogil:
            for index in range(count):
                if send(fd, data[index], sizes[index], MSG_DONTWAIT) < 0:
                    error = errno
                    break
                size = sizeof(int)
                if getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &size) == 0 and pending:
                    error = pending  # refused (loopback: at once): not delivered
                    break
                sent += 1
    finally:
        free(data)
        free(sizes)
    return sent, error
