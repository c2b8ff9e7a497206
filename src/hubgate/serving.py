"""Running ``hubgate serve``'s API processes, and stopping them (D66).

The first SIGTERM (or SIGINT) stops accepting connections, lets the requests in flight finish
for up to ``HUBGATE_SHUTDOWN_GRACE`` seconds and asks the embedded worker to finish or abort its
jobs within the same grace; the caller then stops the embedded database. A second signal stops
everything at once. uvicorn alone does neither: after its own shutdown it raises the signal
again, which ends the process before the worker and the database are stopped, and it forces
only on a second SIGINT.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

if TYPE_CHECKING:
    # Only the type: importing the app's modules here would record metrics before serve
    # has set up their multiprocess folder.
    from hubgate.jobs.worker import WorkerProcess

# Extra seconds the worker gets beyond the grace to abort its jobs and say goodbye.
WORKER_STOP_MARGIN = 10.0


class PortTakenError(Exception):
    """The listen address cannot be bound; the message says why in one line."""


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts so a taken port fails first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Connections made from here on wait in the backlog until the server accepts them.
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise PortTakenError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.set_inheritable(True)
    return sock


class Stopping:
    """How many stop signals arrived, and what each one does to the embedded worker."""

    def __init__(self) -> None:
        self.worker: WorkerProcess | None = None
        self.signals = 0

    @property
    def forced(self) -> bool:
        return self.signals > 1

    def signal(self) -> None:
        self.signals += 1
        if self.worker is None:
            return
        if self.forced:
            self.worker.kill()
        else:
            self.worker.request_stop()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The handler outside uvicorn's run: before it starts and while things stop."""
        self.signal()
        raise SystemExit(0)

    def finish(self, grace: float) -> None:
        """Wait for the worker (it was told to stop with the first signal)."""
        if self.worker is None:
            return
        if self.forced:
            self.worker.kill()
        else:
            self.worker.stop(timeout=grace + WORKER_STOP_MARGIN)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, stopping: Stopping) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.signal()
        self.should_exit = True
        if self.stopping.forced:
            self.force_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.force_exit:
            # The requests still running are cancelled when the loop ends, and uvicorn would
            # answer each with a bare 500. Cutting the connections says what happened: no
            # answer, so nothing was acknowledged.
            for connection in list(self.server_state.connections):
                connection.transport.abort()


class _Supervisor(Multiprocess):
    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], stopping: Stopping
    ) -> None:
        super().__init__(config, sockets)
        self.stopping = stopping

    def _stop(self) -> None:
        self.stopping.signal()
        self.should_exit.set()
        # The children stop accepting when they close their copies of the listening socket;
        # the kernel keeps queueing connections for it as long as this process holds one.
        for sock in self.sockets:
            sock.close()
        if self.stopping.forced:
            for process in self.processes:
                process.kill()

    def handle_int(self) -> None:
        self._stop()

    def handle_term(self) -> None:
        self._stop()

    def join_all(self) -> None:
        # uvicorn waits for its children without looking at signals; a second one must
        # still stop them at once.
        for child in self.processes:
            while child.process.is_alive():
                self.handle_signals()
                child.process.join(0.2)


def run(config: uvicorn.Config, sock: socket.socket, stopping: Stopping) -> None:
    """Serve on ``sock`` until a signal (or a failed start) ends the server, then the worker.

    The caller installed ``stopping.on_signal`` for SIGTERM before it started anything.
    """
    try:
        if config.workers > 1:
            _Supervisor(config, [sock], stopping).run()
        else:
            _Server(config, stopping).run(sockets=[sock])
        # Both servers replaced the handlers; a signal from now on means "faster".
        signal.signal(signal.SIGTERM, stopping.on_signal)
        signal.signal(signal.SIGINT, stopping.on_signal)
    finally:
        stopping.finish(config.timeout_graceful_shutdown or 0.0)
