"""Wake the live hubs of the other worker processes after a commit.

With several gunicorn workers, a capture committed by one must reach websockets held by
another. Each process binds a Unix datagram socket in a directory beside the database; after a
commit it sends one byte to every other socket there. Datagrams are fire-and-forget: a full or
vanished peer never blocks the writer, and the receiving hub reads the database anyway, so a
lost wake-up only delays delivery until the next one (the hub also wakes on a timer).

The sending is done by a thread of its own, not by the writer that commits: under load many
commits fold into one round of datagrams, and the writer (which every capture waits on) spends
no time on directory listings and syscalls. The list of peers is re-read at most every
``PEERS_TTL`` seconds; a worker that starts meanwhile has its hub read the database on its
first subscriber anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PEERS_TTL = 1.0


class CrossProcessNotifier:
    def __init__(self, directory: Path, on_wake: Callable[[], None]) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.on_wake = on_wake
        self.path = directory / f"{os.getpid()}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.out.setblocking(False)
        self._stopped = False
        self._peers: list[str] = []
        self._peers_at = float("-inf")
        self._pending = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="live-notify", daemon=True)
        self._thread.start()
        self._sender = threading.Thread(target=self._send_loop, name="live-notify-send",
                                        daemon=True)
        self._sender.start()

    def broadcast(self) -> None:
        """Ask for the other processes to be woken; returns at once (called after commits)."""
        self._pending.set()

    def _send_loop(self) -> None:
        while True:
            self._pending.wait()
            if self._stopped:
                return
            self._pending.clear()
            self.send_now()

    def send_now(self) -> None:
        """One datagram to every other process's socket."""
        now = time.monotonic()
        if now - self._peers_at >= PEERS_TTL:
            self._peers_at = now
            try:
                names = os.listdir(self.directory)
            except OSError:
                names = []
            own = self.path.name
            self._peers = [str(self.directory / n) for n in names
                           if n != own and n.endswith(".sock")]
        for target in self._peers:
            try:
                self.out.sendto(b"!", target)
            except (BlockingIOError, InterruptedError):
                pass  # the peer is behind; it will read the database when it wakes anyway
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(target)  # a worker that died without cleaning up
                self._peers_at = float("-inf")
            except OSError:
                log.debug("could not wake %s", target, exc_info=True)

    def _listen(self) -> None:
        while not self._stopped:
            try:
                self.sock.recv(64)
            except OSError:
                break
            self.on_wake()

    def close(self) -> None:
        self._stopped = True
        self._pending.set()
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.out.close()
