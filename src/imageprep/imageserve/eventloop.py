"""The event loop behind ``imageprep serve``: every connection on one thread, none able to hold it.

Why one loop rather than a thread per connection: many nodes pull at once, each keeping its
connection open between requests, and a thread per connection is both unbounded and at the mercy
of clients that stop reading. Here sockets are non-blocking and one thread waits in ``epoll`` for
whichever is ready, so the work a client can hold is a connection slot, never the server:

* A request is answered as soon as its head is complete. A small answer (a manifest, an error)
  goes out in one ``send`` on a socket with ``TCP_NODELAY``, so it never waits for the client's
  delayed ACK. A blob follows its head with ``sendfile``, as much as the socket takes each time it
  is writable, at most :data:`TURN_BYTES` per turn so that no transfer starves the others, on a
  corked socket that is uncorked (and so flushed) when the blob is out.
* A head must arrive within ``head_timeout`` of its first byte, an idle keep-alive connection is
  closed after ``idle_timeout``, and an answer that makes no progress for ``send_timeout`` (a
  client that stopped reading) is abandoned. At ``max_connections`` the loop stops accepting until
  one closes; new clients wait in the listen backlog.
* Pipelined requests are answered in order, one at a time: while an answer is being sent the
  connection is not read, so a client that sends without reading only fills its own buffers.
* With TLS the same, through non-blocking SSL sockets; blobs are read in pieces and encrypted,
  since ``sendfile`` cannot encrypt.

File system calls (``stat``, ``open``, ``sendfile`` reading the page cache) run on the loop, as
in nginx: they are short on a local tree.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import ssl
import time
from dataclasses import dataclass
from http import HTTPStatus

from imageprep.imageserve.api import Answer, ApiError, RegistryApi
from imageprep.imageserve.http1 import (
    MAX_HEAD_BYTES,
    SERVER,
    DateLine,
    Request,
    RequestError,
    head_end,
    hopeless,
    parse_head,
    status_line,
)

LOG = logging.getLogger("imageprep.serve")
RECV_BYTES = 64 * 1024
TURN_BYTES = 2 * 1024 * 1024
TLS_PIECE = 256 * 1024
ACCEPT_BATCH = 64
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_CLOSE = b"Connection: close\r\n"
_KEEP = b"Connection: keep-alive\r\n"
_BLANK = b"\r\n"
_EXCLUSIVE = getattr(select, "EPOLLEXCLUSIVE", 0)


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a client may take, and how many may be connected at once."""

    head_timeout: float = 20.0
    idle_timeout: float = 30.0
    send_timeout: float = 60.0
    max_connections: int = 1024


class Connection:
    """One client connection: its buffers, the answer being sent, and when it must make progress."""

    __slots__ = (
        "sock",
        "fd",
        "peer",
        "tls",
        "handshaking",
        "inbuf",
        "out",
        "file",
        "file_offset",
        "file_left",
        "sending",
        "corked",
        "close_after",
        "deadline",
        "head_started",
        "interest",
        "log_line",
    )

    def __init__(self, sock: socket.socket, peer: str, tls: bool, deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.tls = tls
        self.handshaking = tls
        self.inbuf = bytearray()
        self.out: memoryview | bytes = b""
        self.file: int | None = None
        self.file_offset = 0
        self.file_left = 0
        self.sending = False
        self.corked = False
        self.close_after = False
        self.deadline = deadline
        self.head_started: float | None = None
        self.interest = _IN
        self.log_line = ""

    def release_file(self) -> None:
        """Close the blob being sent, if any."""
        if self.file is not None:
            os.close(self.file)
            self.file = None
            self.file_left = 0


class EventLoop:
    """Accepts on ``listener`` and answers every connection with ``api`` until :meth:`stop`."""

    def __init__(
        self,
        listener: socket.socket,
        api: RegistryApi,
        *,
        tls: ssl.SSLContext | None = None,
        limits: Limits | None = None,
        log_requests: bool = False,
    ) -> None:
        self._listener = listener
        self._api = api
        self._tls = tls
        self._limits = limits or Limits()
        self._log_requests = log_requests
        self._date = DateLine()
        self._connections: dict[int, Connection] = {}
        # The epoll instance is made by run(): a forked worker must not share its parent's.
        self._epoll: select.epoll | None = None
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._accepting = False
        self._closed = False
        listener.setblocking(False)

    # --- running -------------------------------------------------------------------------------

    def run(self, poll_interval: float = 0.5, parent: int | None = None) -> None:
        """Serve until :meth:`stop` (or a signal handler raises); timeouts are checked every turn.

        With ``parent`` (a forked worker), the loop also ends when that process is gone, so a
        worker never outlives a supervisor that was killed outright.
        """
        if self._epoll is None:
            self._epoll = select.epoll()
            self._epoll.register(self._wake_read, _IN)
            self._resume_accepting()
        listener_fd = self._listener.fileno()
        wake_fd = self._wake_read
        connections = self._connections
        sweep_every = min(max(poll_interval, 0.05), 1.0)
        next_sweep = time.monotonic() + sweep_every
        while not self._stopping:
            events = self._epoll.poll(sweep_every)
            now = time.monotonic()
            for fd, mask in events:
                if fd == listener_fd:
                    self._accept(now)
                elif fd == wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_fd, 4096)
                else:
                    connection = connections.get(fd)
                    if connection is not None:
                        self._serve(connection, mask, now)
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + sweep_every
                if parent is not None and os.getppid() != parent:
                    LOG.warning("server worker %d stops: its parent %d is gone", os.getpid(), parent)
                    self._stopping = True

    def stop(self) -> None:
        """Make :meth:`run` return soon; safe from another thread or a signal handler."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def close(self) -> None:
        """Close every connection, the listener and the loop's own descriptors."""
        if self._closed:
            return
        self._closed = True
        for connection in list(self._connections.values()):
            self._drop(connection)
        self._listener.close()
        if self._epoll is not None:
            self._epoll.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    # --- connections ---------------------------------------------------------------------------

    def _poller(self) -> select.epoll:
        assert self._epoll is not None, "connections exist only while the loop runs"
        return self._epoll

    def _resume_accepting(self) -> None:
        if not self._accepting and not self._closed and self._epoll is not None:
            # With several workers on one socket, a new connection wakes one of them, not all.
            self._epoll.register(self._listener.fileno(), _IN | _EXCLUSIVE)
            self._accepting = True

    def _pause_accepting(self) -> None:
        if self._accepting and self._epoll is not None:
            self._epoll.unregister(self._listener.fileno())
            self._accepting = False

    def _accept(self, now: float) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    LOG.warning("cannot accept more connections: %s", exc.strerror)
                    self._pause_accepting()  # resumed when a connection closes
                return
            self._add(sock, address, now)
            if len(self._connections) >= self._limits.max_connections:
                self._pause_accepting()
                return

    def _add(self, sock: socket.socket, address: object, now: float) -> None:
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:
            LOG.debug("dropping a new connection: %s", exc)
            sock.close()
            return
        peer = address[0] if isinstance(address, tuple) else str(address)
        deadline = now + (self._limits.head_timeout if self._tls else self._limits.idle_timeout)
        connection = Connection(sock, str(peer), self._tls is not None, deadline)
        self._connections[connection.fd] = connection
        self._poller().register(connection.fd, _IN)

    def _drop(self, connection: Connection) -> None:
        if self._connections.pop(connection.fd, None) is None:
            return
        connection.release_file()
        with contextlib.suppress(OSError, ValueError):
            self._poller().unregister(connection.fd)
        with contextlib.suppress(OSError):
            connection.sock.close()
        if len(self._connections) < self._limits.max_connections:
            self._resume_accepting()

    def _want(self, connection: Connection, interest: int) -> None:
        if connection.interest != interest:
            self._poller().modify(connection.fd, interest)
            connection.interest = interest

    def _sweep(self, now: float) -> None:
        late = [c for c in self._connections.values() if c.deadline < now]
        for connection in late:
            LOG.debug("closing the connection from %s: timed out", connection.peer)
            self._drop(connection)

    # --- one connection's work -----------------------------------------------------------------

    def _serve(self, connection: Connection, mask: int, now: float) -> None:
        try:
            if connection.handshaking:
                alive = self._handshake(connection, now)
            elif connection.sending:
                alive = self._send(connection, now)
                if alive and not connection.sending:
                    alive = self._answer_buffered(connection, now) and self._drain_tls(connection, now)
            else:
                alive = self._receive(connection, now)
        except OSError:  # the network's doing: the client went away
            LOG.debug("connection from %s failed", connection.peer, exc_info=True)
            alive = False
        except Exception as exc:  # one broken connection must never stop the loop
            LOG.warning("dropping the connection from %s: %s", connection.peer, exc or type(exc).__name__)
            LOG.debug("connection from %s failed", connection.peer, exc_info=True)
            alive = False
        if not alive:
            self._drop(connection)

    def _handshake(self, connection: Connection, now: float) -> bool:
        sock = connection.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(connection, _IN)
            return True
        except ssl.SSLWantWriteError:
            self._want(connection, _OUT)
            return True
        except (ssl.SSLError, OSError) as exc:
            LOG.debug("TLS handshake with %s failed: %s", connection.peer, exc)
            return False
        connection.handshaking = False
        connection.deadline = now + self._limits.idle_timeout
        self._want(connection, _IN)
        return self._receive(connection, now)

    def _receive(self, connection: Connection, now: float) -> bool:
        """Read what has arrived and answer it; False when the connection is to be closed."""
        sock = connection.sock
        while True:
            try:
                data = sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                data = None
            except (ssl.SSLError, OSError):
                return False
            if data is not None:
                if not data:
                    return False
                connection.inbuf += data
            if not self._answer_buffered(connection, now):
                return False
            # An SSL socket can hold decrypted bytes that epoll knows nothing about.
            if data is None or connection.sending or not self._tls_pending(connection):
                return True

    def _drain_tls(self, connection: Connection, now: float) -> bool:
        if not connection.sending and self._tls_pending(connection):
            return self._receive(connection, now)
        return True

    @staticmethod
    def _tls_pending(connection: Connection) -> bool:
        return connection.tls and isinstance(connection.sock, ssl.SSLSocket) and connection.sock.pending() > 0

    def _answer_buffered(self, connection: Connection, now: float) -> bool:
        """Answer the complete requests in the buffer, stopping while an answer is still going out."""
        inbuf = connection.inbuf
        while not connection.sending:
            while inbuf and inbuf[0] in _BLANK:  # blank lines between requests are allowed
                del inbuf[:1]
            if not inbuf:
                connection.head_started = None
                connection.deadline = now + self._limits.idle_timeout
                return True
            end = head_end(inbuf)
            if end < 0:
                if len(inbuf) > MAX_HEAD_BYTES:
                    error = RequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
                elif hopeless(inbuf):
                    error = RequestError(HTTPStatus.BAD_REQUEST, "this is not an HTTP/1.1 request")
                else:
                    if connection.head_started is None:
                        connection.head_started = now
                        connection.deadline = now + self._limits.head_timeout
                    return True
                request: Request | None = None
                answer = _protocol_error(error)
                inbuf.clear()
            else:
                head = bytes(inbuf[:end])
                del inbuf[:end]
                connection.head_started = None
                try:
                    request = parse_head(head)
                except RequestError as error:
                    request = None
                    answer = _protocol_error(error)
                else:
                    answer = self._api.answer(request.method, request.target, request.headers)
            self._begin(connection, answer, request, now)
            if not self._send(connection, now):
                return False
        return True

    def _begin(self, connection: Connection, answer: Answer, request: Request | None, now: float) -> None:
        """Queue ``answer``'s head and body on the connection."""
        keep = request is not None and request.keep_alive and not answer.close and not self._stopping
        if not keep:
            connection_line = _CLOSE
        elif request is not None and request.version == "HTTP/1.0":
            connection_line = _KEEP
        else:
            connection_line = b""
        head = b"".join(
            (
                status_line(answer.status),
                self._date.current(),
                SERVER,
                answer.fields,
                connection_line,
                b"\r\n",
            )
        )
        connection.close_after = not keep
        connection.sending = True
        connection.deadline = now + self._limits.send_timeout
        if request is not None and request.method == "HEAD":
            answer.release()
            connection.out = head
        elif answer.file is not None:
            # Corked until the blob is out, the head and the blob leave in full segments (as nginx's
            # tcp_nopush): 10-20% fewer segments per GB than TCP_NODELAY sends on its own.
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            connection.corked = True
            connection.out = head
            connection.file = answer.file
            connection.file_offset = answer.offset
            connection.file_left = answer.length
            answer.file = None
        else:
            connection.out = head + answer.body if answer.body else head
        if self._log_requests:
            line = (
                f"{request.method} {request.target} {request.version}" if request else "(unreadable request)"
            )
            connection.log_line = f'"{_printable(line)}" {answer.status} {answer.length or len(answer.body)}'

    def _send(self, connection: Connection, now: float) -> bool:
        """Send what the socket takes this turn; False when the connection is to be closed."""
        sock = connection.sock
        budget = TURN_BYTES
        while budget > 0:
            out = connection.out
            if out:
                try:
                    sent = sock.send(out)
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    break
                except ssl.SSLWantReadError:
                    self._want(connection, _IN)
                    return True
                except OSError:
                    return False
                if sent < len(out):
                    connection.out = memoryview(out)[sent:]
                    break  # the socket is full
                connection.out = b""
                budget -= sent
            elif connection.file_left:
                sent = self._next_piece(connection) if connection.tls else self._sendfile(connection)
                if sent < 0:
                    return False
                if sent == 0:
                    break
                budget -= sent
            else:
                return self._finished(connection, now)
        connection.deadline = now + self._limits.send_timeout
        self._want(connection, _OUT)
        return True

    @staticmethod
    def _sendfile(connection: Connection) -> int:
        """Bytes of the blob the socket took (0: it is full), or -1 when the transfer failed."""
        assert connection.file is not None
        try:
            sent = os.sendfile(connection.fd, connection.file, connection.file_offset, connection.file_left)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return -1
        if sent == 0:
            return -1  # the file shrank under us: the promised length cannot be sent
        connection.file_offset += sent
        connection.file_left -= sent
        return sent

    @staticmethod
    def _next_piece(connection: Connection) -> int:
        """Read the blob's next piece into the send buffer (TLS); its size, or -1 on failure."""
        assert connection.file is not None
        piece = os.pread(connection.file, min(connection.file_left, TLS_PIECE), connection.file_offset)
        if not piece:
            return -1
        connection.file_offset += len(piece)
        connection.file_left -= len(piece)
        connection.out = piece
        return len(piece)

    def _finished(self, connection: Connection, now: float) -> bool:
        if connection.corked:
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)  # sends the tail now
            connection.corked = False
        connection.release_file()
        connection.sending = False
        if connection.log_line:
            LOG.info("%s %s", connection.peer, connection.log_line)
            connection.log_line = ""
        if connection.close_after:
            return False
        self._want(connection, _IN)
        connection.deadline = now + self._limits.idle_timeout
        return True


def _protocol_error(error: RequestError) -> Answer:
    answer = ApiError(error.status, "UNSUPPORTED", error.message).answer()
    answer.close = True
    return answer


def _printable(text: str) -> str:
    # Request lines come from the network: never let them write control characters.
    return "".join(c if c.isprintable() else "?" for c in text.encode("ascii", "backslashreplace").decode())
