"""The systemd unit, checked offline: systemd-analyze needs no running systemd (issue 7)."""

from __future__ import annotations

import errno
import json
import re
import shutil

import pytest

from tests.fixtures.packaging import UNIT, run, unit_settings
from tests.unit_sandbox import seccomp_spec


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_unit_exposure_is_at_most_2_5() -> None:
    result = run("systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT), check=False)
    match = re.search(r"Overall exposure level for netprobe-agent\.service: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.5, result.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_unit_syscall_filter_keeps_the_clock_read_and_refuses_clock_writes_with_eperm() -> None:
    # agent/clock.py calls adjtimex(3) read-only, which glibc 2.36 makes with clock_adjtime(2);
    # @system-service lacks both, ~@privileged removes @clock, and a filtered call without
    # SystemCallErrorNumber= is killed with SIGSYS.
    spec = json.loads(seccomp_spec(unit_settings()))
    service_set = run("systemd-analyze", "syscall-filter", "@system-service", "--no-pager").stdout.split()
    assert not {"adjtimex", "clock_adjtime"} & set(service_set)
    assert {"adjtimex", "clock_adjtime", "clock_adjtime64"} <= set(spec["allow"])
    assert not {"settimeofday", "clock_settime", "sethostname", "setrlimit", "capset"} & set(spec["allow"])
    assert spec["errno"] == errno.EPERM
    assert "ProtectClock" not in unit_settings(), "ProtectClock= denies adjtimex whatever the allow list says"


def test_unit_is_a_watchdogged_notify_service_that_reloads_on_sighup_and_backs_off() -> None:
    unit = unit_settings()
    assert unit["Type"] == ["notify"]
    assert int(unit["WatchdogSec"][-1]) > 0
    assert unit["Restart"] == ["on-failure"]
    assert int(unit["RestartSec"][-1]) >= 10, "a crash loop must not hammer a Pi or its uplink"
    assert "78" in unit["RestartPreventExitStatus"][-1].split(), "a config error does not fix itself"
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["User"] == ["netprobe"] and unit["StateDirectory"] == ["netprobe"]
    for key in ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes"):
        name, value = key.split("=")
        assert unit[name] == [value]
    for name in ("ProtectKernelTunables", "ProtectControlGroups", "LockPersonality", "MemoryDenyWriteExecute"):
        assert unit[name] == ["yes"]
    assert unit["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    assert unit["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET"]
    assert unit["SystemCallFilter"][0].split()[0] == "@system-service"
