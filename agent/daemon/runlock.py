"""One user of a node's identity at a time: `netprobe run` or `netprobe spool flush`, never both.

Both connect to the broker as the node and send from the same spool. Where the broker makes the
client id the username (`use_username_as_clientid`, as packaging/mosquitto/netprobe.conf does on
its TLS listener), the flush's own client id is ignored: its connection takes over the daemon's
session, the broker closes the daemon's, the daemon reconnects and closes the flush's, and so on.
So each holds `state_dir/run.lock` (flock) while it runs, and the other one refuses to start,
saying who holds it. The kernel lets go of the lock when its process ends, even on kill -9.
"""

from __future__ import annotations

import fcntl
import os
from typing import Optional

FILENAME = "run.lock"


class Busy(Exception):
    """The lock is held: `holder` is what the holder wrote ("netprobe run", ...), `pid` its process."""

    def __init__(self, path: str, holder: str, pid: Optional[int]) -> None:
        super().__init__(f"{path} is held by {holder or 'another netprobe'}{f' (pid {pid})' if pid else ''}")
        self.path, self.holder, self.pid = path, holder, pid


class RunLock:
    def __init__(self, state_dir: str, what: str) -> None:
        self.path = os.path.join(state_dir, FILENAME)
        self.what = what
        self._fd: Optional[int] = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise Busy at once (never wait: the caller says who holds it and stops)."""
        os.makedirs(os.path.dirname(self.path), mode=0o750, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            pid, _, holder = text.partition(" ")
            raise Busy(self.path, holder, int(pid) if pid.isdigit() else None) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.what}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None
