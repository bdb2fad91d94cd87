"""The incident engine beside `netprobe collect`, in a child process of its own.

In the collector's process the engine's threads shared one interpreter lock with
the storing loop: when a 10,000-node fleet's backlog arrived, reading it into the
engine slowed the storing, and live Readings waited a minute behind it
(docs/benchmarks.md). As `netprobe incidents --watch` in a child, it has its own
lock and core, and a fault in it cannot stop the storing. The collector starts it,
starts it again with backoff when it exits, and stops it when it stops; the child
stops by itself when the collector is gone (`PARENT_ENV`), even after a SIGKILL.
The database lease (`incidents/store.py`) still keeps one engine per database; the
engines one collector starts share its name (`HOLDER_ENV`), so a restarted engine
resumes at once instead of waiting for its predecessor's lease to lapse.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Optional

import agent

log = logging.getLogger(__name__)

PARENT_ENV = "NETPROBE_ENGINE_PARENT"  # the collector's pid: the child stops once its parent changes
HOLDER_ENV = "NETPROBE_ENGINE_HOLDER"  # the lease holder's name, the same for every engine one collector starts
BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 60.0
STOP_S = 3.0  # the engine's grace at the collector's stop: systemd's stop budget belongs to the storing
STEADY_S = 60.0  # an engine that ran this long before exiting is restarted at the shortest backoff


def parent_gone() -> bool:
    """In the child: the collector that started us is no longer our parent (it exited or was killed)."""
    parent = os.environ.get(PARENT_ENV, "")
    return parent.isdigit() and os.getppid() != int(parent)


def holder_name() -> str:
    """A lease holder's name: this host and process, and a nonce against a reused pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def interpreter() -> list[str]:
    """How to start this same `agent` in a child: the package's own directory first on the path, and
    isolated (-I) if we are, as the .deb's launcher runs it from /usr/lib/netprobe-collector;
    `python -m agent` would find no `agent` there, or another package's."""
    home = os.path.dirname(os.path.dirname(os.path.abspath(agent.__file__)))
    code = f"import sys; sys.path.insert(0, {home!r}); from agent.cli import main; sys.exit(main())"
    return [sys.executable, *(["-I"] if sys.flags.isolated else []), "-c", code]


class EngineProcess:
    """Supervises `netprobe incidents --watch -c CONFIG` as a child of the collector."""

    def __init__(self, config_path: Optional[str], verbose: bool = False) -> None:
        self.command = [*interpreter(), *(["-v"] if verbose else []), "incidents", "--watch"]
        if config_path:
            self.command += ["-c", config_path]
        # Its engines take over each other's lease: the one before is reaped before the next starts.
        self.holder = holder_name()
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.started = 0.0
        self.next_start = 0.0
        self.backoff = BACKOFF_MIN_S

    def poll(self, now: Optional[float] = None) -> None:
        """Start the engine if it is not running and its backoff has passed; cheap enough for every loop."""
        now = time.monotonic() if now is None else now
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return
            ran = now - self.started
            self.backoff = BACKOFF_MIN_S if ran >= STEADY_S else min(self.backoff * 2, BACKOFF_MAX_S)
            self.next_start = now + self.backoff
            self.proc = None
            log.error("incidents: the engine process exited (%s) after %.0f s; restarting in %.0f s", _exit_text(code),
                      ran, self.backoff)  # fmt: skip
        if now < self.next_start:
            return
        try:
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                env={**os.environ, PARENT_ENV: str(os.getpid()), HOLDER_ENV: self.holder},
            )
        except OSError as exc:
            self.next_start = now + self.backoff
            log.error("incidents: cannot start the engine process: %s; retrying in %.0f s", exc, self.backoff)
            return
        self.started = now
        log.info("incidents: the engine runs in process %d", self.proc.pid)

    def terminate(self) -> None:
        """Ask the engine to stop (SIGTERM), without waiting: the collector drains meanwhile."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, timeout: float = STOP_S) -> None:
        """Ask, wait up to `timeout`, then SIGKILL: an engine killed mid-pass loses nothing, since what
        it had decided but not stored is decided again from the database by the next one."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.info("incidents: the engine process was still in a pass after %.0f s; killed it", timeout)
            proc.kill()
            proc.wait()


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"
