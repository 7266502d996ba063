# cython: language_level=3
"""An HTTP request sent and the start of its answer read with one release of the GIL
(compiled builds only).

:meth:`exporters.otlp.fastpath.span_transport.PlainHTTPTransport.request` sent a
request with ``socket.sendall`` and read the answer with ``socket.recv``. On a socket
with a timeout each of those is a ``poll`` and then the call, and each lets the GIL
go and takes it back: four times per request. While the orchestrator's thread runs
Python, taking it back means waiting for that thread to drop it (up to the 5 ms
switch interval) and a few context switches: on the span export thread of the
overhead benchmark's traced pipeline (512-span batches of 134 KB to rotel) a request
cost 330-345 us of CPU, against 160-190 us on an idle process; 255-265 us this way.

:func:`exchange` sends the request head and body (two buffers, one ``sendmsg``, so
the body is not copied behind the head), waits for the answer and reads what has
arrived, with the GIL released once. The caller parses the answer from those bytes
and reads the rest, if any, from the socket as before. It works on a duplicate of
the socket's descriptor: a ``close`` from another thread (which shuts the socket
down first, waking this one) can never leave it sending to a descriptor number that
was closed and reused meanwhile. A pure-Python build keeps ``sendall`` and ``recv``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EAGAIN, EINTR, ETIMEDOUT, errno
from libc.stdlib cimport free, malloc
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport close, dup


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len


cdef extern from "<sys/socket.h>" nogil:
    struct msghdr:
        void *msg_name
        unsigned int msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t sendmsg(int fd, const msghdr *message, int flags)
    ssize_t recv(int fd, void *buf, size_t size, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long count, int timeout_ms)
    short POLLIN
    short POLLOUT


cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK


cdef extern from "<string.h>" nogil:
    void *memset(void *target, int value, size_t size)


#: The most of the answer read here; the caller reads anything beyond from the socket.
cdef enum:
    _FIRST_READ = 65536


#: The longest one ``poll`` waits. ``poll`` takes an ``int`` of milliseconds, 24.8 days
#: at most; a longer timeout (the configured one may be weeks) is waited for in several.
cdef double _LONGEST_POLL_S = 3600.0


cdef inline double _now() noexcept nogil:
    cdef timespec at
    clock_gettime(CLOCK_MONOTONIC, &at)
    return at.tv_sec + at.tv_nsec * 1e-9


cdef int _wait(int fd, short events, double deadline) noexcept nogil:
    """0 once ``fd`` is ready for ``events`` (or in error: the next call says which),
    ETIMEDOUT past ``deadline`` (negative: none), else the ``errno`` of ``poll``."""
    cdef pollfd waiting
    cdef double left
    cdef int timeout_ms, ready
    while True:
        timeout_ms = -1
        if deadline >= 0:
            left = deadline - _now()
            if left <= 0:
                return ETIMEDOUT
            if left > _LONGEST_POLL_S:  # an int of milliseconds: no longer than this a call
                left = _LONGEST_POLL_S
            timeout_ms = <int>(left * 1000.0) + 1
        waiting.fd, waiting.events, waiting.revents = fd, events, 0
        ready = poll(&waiting, 1, timeout_ms)
        if ready > 0:
            return 0
        if ready < 0 and errno != EINTR:
            return errno


cdef int _after_failure(int fd, short events, double deadline) noexcept nogil:
    """After a call on ``fd`` failed: 0 to call again (interrupted, or ready once
    waited for), else the ``errno`` that ends the exchange. Reads ``errno`` first."""
    cdef int error = errno
    if error == EINTR:
        return 0
    if error != EAGAIN and error != EWOULDBLOCK:
        return error
    return _wait(fd, events, deadline)


cdef int _send_all(int fd, iovec *parts, double deadline) noexcept nogil:
    """Send both ``parts`` whole; 0, or the ``errno`` that stopped it."""
    cdef msghdr message
    cdef ssize_t sent
    cdef int error
    memset(&message, 0, sizeof(message))
    message.msg_iov, message.msg_iovlen = parts, 2
    while parts[0].iov_len + parts[1].iov_len > 0:
        sent = sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT)
        if sent < 0:
            error = _after_failure(fd, POLLOUT, deadline)
            if error:
                return error
            continue
        if <size_t>sent >= parts[0].iov_len:  # the head is out: the rest is body
            sent -= parts[0].iov_len
            parts[0].iov_len = 0
            parts[1].iov_base = <char *>parts[1].iov_base + sent
            parts[1].iov_len -= sent
        else:
            parts[0].iov_base = <char *>parts[0].iov_base + sent
            parts[0].iov_len -= sent
    return 0


cdef int _read_some(int fd, char *buffer, ssize_t *got, double deadline) noexcept nogil:
    """Wait for the answer and read what has arrived (0 bytes: the peer closed)."""
    cdef ssize_t count
    cdef int error
    while True:
        count = recv(fd, buffer, _FIRST_READ, MSG_DONTWAIT)
        if count >= 0:
            got[0] = count
            return 0
        error = _after_failure(fd, POLLIN, deadline)
        if error:
            return error


def exchange(int fd, bytes head, bytes body, double timeout_s):
    """Send ``head`` then ``body`` on the connected stream socket ``fd`` and read the
    first bytes of the answer, all with the GIL released once. ``timeout_s`` bounds
    the whole exchange (negative: no bound).

    Returns ``(error, data)``: 0 and what was read (empty when the peer closed the
    connection first), or the ``errno`` that stopped it (``ETIMEDOUT`` when the time
    ran out) and no data.
    """
    cdef iovec parts[2]
    cdef char *buffer = <char *>malloc(_FIRST_READ)
    cdef ssize_t got = 0
    cdef int error = 0, own
    cdef double deadline = _now() + timeout_s if timeout_s >= 0 else -1.0
    if buffer == NULL:
        raise MemoryError()
    parts[0].iov_base, parts[0].iov_len = PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head)
    parts[1].iov_base, parts[1].iov_len = PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body)
    try:
        own = dup(fd)
        if own < 0:
            return errno, b""
        with nogil:  # head and body stay alive: the caller holds them
            error = _send_all(own, parts, deadline)
            if not error:
                error = _read_some(own, buffer, &got, deadline)
            close(own)
        if error:
            return error, b""
        return 0, PyBytes_FromStringAndSize(buffer, got)
    finally:
        free(buffer)
