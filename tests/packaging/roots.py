"""Debian bookworm roots for the install tests (issues 17 and 18): a stock minimal bookworm
(`debootstrap --variant=minbase`) for amd64, arm64 and armhf, the foreign ones finished under
qemu-user-static through binfmt_misc.

Each base root is built once and cached under ROOTS/<arch> with a stamp (what it was built from);
a later run reuses it while the stamp matches, so a run pays for a root only the first time. The
roots of one run are built side by side (start_roots), as the qemu stage is CPU-bound and the
download is not. Tests never touch a base root: they get a copy (Root), and every command in it
runs in a mount namespace of its own (proc, dev and sys mounted there, gone when it ends) and a
network namespace of its own, which has only its loopback: nothing a test runs in a root can reach
any other machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

ROOTS = Path(os.environ.get("NETPROBE_TEST_ROOTS", "/var/cache/netprobe-test-roots"))
SUITE = "bookworm"
ARCHES = ("amd64", "arm64", "armhf")
# Raise to rebuild every cached root (e.g. when what is built into it changes).
ROOT_FORMAT = 1
QEMU = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}
CHROOT_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root DEBIAN_FRONTEND=noninteractive"
STAMP = ".netprobe-root-stamp"


def host_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def debian_mirrors() -> tuple[str, str]:
    """(archive, security archive) as this machine's apt sources name them, so that the roots and
    bundles come from the mirror known to work here; NETPROBE_TEST_MIRROR overrides the first."""
    uris: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        uris += re.findall(r"^\s*URIs:\s*(\S+)", text, re.M)
        uris += re.findall(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
    uris = [u.rstrip("/") for u in uris if u.startswith(("http://", "https://"))]
    archive = next((u for u in uris if u.endswith("/debian")), "http://deb.debian.org/debian")
    security = next((u for u in uris if u.endswith("/debian-security")), "http://deb.debian.org/debian-security")
    return os.environ.get("NETPROBE_TEST_MIRROR", archive), security


def run(cmd: list[str], timeout: float = 600, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def binfmt_ready(arch: str) -> Optional[str]:
    """None when the kernel runs `arch` binaries through qemu-user-static (registering it if
    binfmt-support is installed but not active); otherwise why not."""
    if arch == host_arch():
        return None
    qemu = QEMU.get(arch)
    if qemu is None:
        return f"no qemu-user emulator known for {arch}"
    if not Path(f"/usr/bin/{qemu}-static").exists():
        return f"needs /usr/bin/{qemu}-static (apt-get install qemu-user-static binfmt-support)"
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "status").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)], check=False)
    entry = misc / qemu
    if not entry.exists() and shutil.which("update-binfmts"):
        run(["update-binfmts", "--enable", qemu], check=False)
    if not entry.exists():
        return f"binfmt_misc has no {qemu} entry (update-binfmts --enable {qemu})"
    text = entry.read_text()
    if not text.startswith("enabled"):
        return f"binfmt_misc entry {qemu} is disabled"
    if "F" not in text.partition("flags:")[2].split("\n")[0]:
        return f"binfmt_misc entry {qemu} lacks the F flag: a chroot could not find the emulator"
    return None


def missing_for_roots(arch: str) -> Optional[str]:
    """Why this machine cannot build and enter a root for `arch`, or None."""
    if os.geteuid() != 0:
        return "builds and enters chroots: needs root (CI runs as root)"
    for tool in ("debootstrap", "unshare", "chroot", "ip", "dpkg"):
        if shutil.which(tool) is None:
            return f"needs {tool} (tools/install-system-deps installs it)"
    if not Path("/usr/share/keyrings/debian-archive-keyring.gpg").exists():
        return "needs debian-archive-keyring"
    return binfmt_ready(arch)


def _stamp(arch: str) -> str:
    debootstrap = run(["dpkg-query", "-W", "-f=${Version}", "debootstrap"], check=False).stdout
    return json.dumps(
        {
            "format": ROOT_FORMAT,
            "suite": SUITE,
            "variant": "minbase",
            "arch": arch,
            "mirror": debian_mirrors()[0],
            "debootstrap": debootstrap,
        },
        sort_keys=True,
    )


def _build(arch: str, into: Path) -> None:
    mirror = debian_mirrors()[0]
    if into.exists():
        shutil.rmtree(into)
    base = ["debootstrap", "--variant=minbase", f"--arch={arch}"]
    if arch == host_arch():
        run([*base, SUITE, str(into), mirror], timeout=900)
        return
    run([*base, "--foreign", SUITE, str(into), mirror], timeout=900)
    # The second stage runs the target's own dpkg under qemu; it mounts /proc itself, in a mount
    # namespace that ends with it. No network: everything it needs was downloaded above.
    second = ["unshare", "--mount", "--propagation", "private", "--net", "--"]
    run([*second, "chroot", str(into), "/debootstrap/debootstrap", "--second-stage"], timeout=1200)


def base_root(arch: str) -> Path:
    """The cached minbase root for `arch`, built if missing or stale. Safe against a second pytest
    run on the same machine (a lock per architecture)."""
    ROOTS.mkdir(parents=True, exist_ok=True)
    path = ROOTS / arch
    stamp = _stamp(arch)
    with open(ROOTS / f"{arch}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (path / STAMP).read_text() == stamp:
                return path
        except OSError:
            pass
        building = ROOTS / f".{arch}.building"
        _build(arch, building)
        (building / STAMP).write_text(stamp)
        if path.exists():
            shutil.rmtree(path)
        building.rename(path)
    return path


_pool = ThreadPoolExecutor(max_workers=len(ARCHES), thread_name_prefix="root")
_futures: dict[str, Future[Path]] = {}
_futures_lock = threading.Lock()


def start_roots(arches: list[str]) -> None:
    """Begin building (or checking) these roots in the background, side by side."""
    with _futures_lock:
        for arch in arches:
            if arch not in _futures and missing_for_roots(arch) is None:
                _futures[arch] = _pool.submit(base_root, arch)


def wait_root(arch: str) -> Path:
    start_roots([arch])
    return _futures[arch].result(timeout=1800)


class Root:
    """A throwaway copy of a base root (cp -a: ~0.5 s), entered only through sh()."""

    def __init__(self, arch: str, base: Path) -> None:
        work = ROOTS / "work"
        work.mkdir(parents=True, exist_ok=True)
        self.arch = arch
        self.dir = Path(tempfile.mkdtemp(prefix=f"{arch}-", dir=work))
        self.path = self.dir / "root"
        run(["cp", "-a", str(base), str(self.path)])
        (self.path / STAMP).unlink()

    def sh(self, script: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs `script` with /bin/sh on this machine, in fresh mount and network namespaces
        (loopback only, up), with R set to the root and `in_root CMD...` running CMD inside it
        with a clean environment. The script is PID 1 of a PID namespace of its own: when it
        ends, the mounts, the network namespace and anything it left running in the background
        (a listener, a web server) end with it."""
        prelude = f"""
set -eu
R={shlex.quote(str(self.path))}
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t sysfs -o ro sysfs "$R/sys"
ip link set lo up
in_root() {{ chroot "$R" /usr/bin/env -i {CHROOT_ENV} "$@"; }}
"""
        cmd = ["unshare", "--mount", "--propagation", "private", "--net", "--fork", "--pid", "--mount-proc"]
        return run([*cmd, "--", "/bin/sh", "-c", prelude + script], timeout=timeout, check=check)

    def file(self, path: str) -> Path:
        """Where a path inside the root is on this machine."""
        return self.path / path.lstrip("/")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
