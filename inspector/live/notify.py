"""Wake the live hubs of the other worker processes after a commit.

With several gunicorn workers, a capture committed by one must reach websockets held by
another. Each process binds a Unix datagram socket in a directory beside the database; after a
commit it sends one byte to every other socket there. Datagrams are fire-and-forget: a full or
vanished peer never blocks the writer, and the receiving hub reads the database anyway, so a
lost wake-up only delays delivery until the next one (the hub also wakes on a timer).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


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
        self._thread = threading.Thread(target=self._listen, name="live-notify", daemon=True)
        self._thread.start()

    def broadcast(self) -> None:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        own = self.path.name
        for name in names:
            if name == own or not name.endswith(".sock"):
                continue
            target = str(self.directory / name)
            try:
                self.out.sendto(b"!", target)
            except (BlockingIOError, InterruptedError):
                pass  # the peer is behind; it will read the database when it wakes anyway
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(target)  # a worker that died without cleaning up
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
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.out.close()
