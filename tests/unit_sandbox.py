"""The system-call side of netprobe-agent.service, without a running systemd.

PID 1 on the CI machine is not systemd, so the unit cannot be started for real. Instead:
- `sandboxed()` rebuilds its seccomp filter with libseccomp (Debian's python3-seccomp) from the
  unit's own settings: `SystemCallFilter=` (groups expanded by `systemd-analyze syscall-filter`,
  `~` lines removed), `SystemCallErrorNumber=`, `MemoryDenyWriteExecute=` and
  `RestrictAddressFamilies=`, and loads it in front of the service's command;
- `mount_namespace()` gives the command a private mount namespace shaped like the unit's
  `ProtectSystem=strict` (root read-only, the StateDirectory= writable), `PrivateTmp=`,
  `ProtectHome=` and `ProtectKernelTunables=`;
- the user and capabilities come from setpriv (tests/packaging/test_install.py).
Not reproduced: PrivateDevices= (a minimal /dev), RestrictNamespaces=, LockPersonality=,
ProtectProc=, and read-only remounts of mounts other than / (this machine has only one).
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
from pathlib import Path

# Run by Debian's /usr/bin/python3 (which has the seccomp module) as `python3 -c LOADER SPEC CMD...`.
LOADER = r"""
import errno, json, os, sys
import seccomp

spec = json.loads(sys.argv[1])
deny = seccomp.ERRNO(spec["errno"])
f = seccomp.SyscallFilter(defaction=deny)
guarded = {"mmap", "mmap2", "mprotect", "pkey_mprotect", "shmat", "socket"}


def allow(name, *args):
    try:
        f.add_rule(seccomp.ALLOW, name, *args)
    except (RuntimeError, ValueError, OSError):
        pass  # not a system call on this architecture


for name in spec["allow"]:
    if name not in guarded or (not spec["mdwe"] and name != "socket"):
        allow(name)
W, X = 0x2, 0x4  # PROT_WRITE, PROT_EXEC
if spec["mdwe"]:
    # as systemd: no mapping both writable and executable; nothing made executable later
    for name in ("mmap", "mmap2"):
        if name in spec["allow"]:
            allow(name, seccomp.Arg(2, seccomp.MASKED_EQ, X, 0))
            allow(name, seccomp.Arg(2, seccomp.MASKED_EQ, W, 0))
    for name in ("mprotect", "pkey_mprotect"):
        if name in spec["allow"]:
            allow(name, seccomp.Arg(2, seccomp.MASKED_EQ, X, 0))
    if "shmat" in spec["allow"]:
        allow("shmat", seccomp.Arg(2, seccomp.MASKED_EQ, 0o100000, 0))  # SHM_EXEC
if "socket" in spec["allow"]:
    if spec["families"] is None:
        allow("socket")
    else:
        for family in spec["families"]:
            allow("socket", seccomp.Arg(0, seccomp.EQ, family))
f.load()
os.execv(sys.argv[2], sys.argv[2:])
"""


def syscall_groups() -> dict[str, list[str]]:
    text = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def seccomp_spec(unit: dict[str, list[str]]) -> str:
    """The JSON spec LOADER takes, from a unit's settings (key -> values, as parsed by the test)."""
    groups = syscall_groups()
    allowed: set[str] = set()
    for value in unit.get("SystemCallFilter", []):
        if value.startswith("~"):
            allowed -= expand(value[1:].split(), groups)
        else:
            allowed |= expand(value.split(), groups)
    families = None
    if "RestrictAddressFamilies" in unit:
        families = [int(getattr(socket, name)) for name in unit["RestrictAddressFamilies"][-1].split()]
    number = unit.get("SystemCallErrorNumber", ["EPERM"])[-1]
    spec = {
        "allow": sorted(allowed),
        "errno": getattr(errno, number),
        "mdwe": unit.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes",
        "families": families,
    }
    return json.dumps(spec)


def sandboxed(unit: dict[str, list[str]], command: list[str]) -> list[str]:
    """`command` behind the unit's seccomp filter (the caller adds setpriv in front)."""
    return ["/usr/bin/python3", "-c", LOADER, seccomp_spec(unit), *command]


def have_seccomp() -> bool:
    return (
        Path("/usr/bin/python3").exists()
        and subprocess.run(["/usr/bin/python3", "-c", "import seccomp"], capture_output=True).returncode == 0
    )


def mount_namespace(unit: dict[str, list[str]]) -> list[str]:
    """A prefix that runs the rest of the command line in a private mount namespace shaped like
    the unit's file-system settings. Needs root (unshare), and must come before setpriv."""
    steps = ["mount --make-rprivate /"]
    if unit.get("PrivateTmp", ["no"])[-1] == "yes":
        steps += ["mount -t tmpfs -o mode=1777 tmpfs /tmp", "mount -t tmpfs -o mode=1777 tmpfs /var/tmp"]
    if unit.get("ProtectHome", ["no"])[-1] == "yes":
        steps += [f"if [ -d {d} ]; then mount -t tmpfs -o ro,mode=000 tmpfs {d}; fi" for d in ("/home", "/root")]
    writable = [f"/var/lib/{name}" for value in unit.get("StateDirectory", []) for name in value.split()]
    writable += [p for value in unit.get("ReadWritePaths", []) for p in value.split()]
    if unit.get("ProtectSystem", ["no"])[-1] == "strict":
        steps += [f"mount --bind {p} {p}" for p in writable]
        steps += ["mount -o remount,bind,ro /"]
    if unit.get("ProtectKernelTunables", ["no"])[-1] == "yes":
        steps += ["mount --bind /proc/sys /proc/sys", "mount -o remount,bind,ro /proc/sys"]
    steps += [f"cd {unit.get('WorkingDirectory', ['/'])[-1]}"]  # after the mounts, as systemd does
    script = " && ".join(steps) + ' && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, "sh"]
