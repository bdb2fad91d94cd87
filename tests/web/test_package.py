"""The collector's own Debian package, checked offline: fields, files, units, and that it runs.

Not installed here: tests/packaging/ installs netprobe-agent into this host, and this
package is checked with dpkg-deb and systemd-analyze instead (its modules would
run the same from /usr/lib/netprobe-collector either way, and that is run below).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.collector.settings import parse_collector_config
from agent.config import tomllib
from tests.fixtures.collector import ROOT, collector_toml, wait_until

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="builds a .deb: needs dpkg-deb")
BUILD = ROOT / "packaging" / "collector" / "build-deb"
UNITS = ("netprobe-collector.service", "netprobe-web.service")


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("deb")
    done = subprocess.run(["bash", str(BUILD), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    root = out / "root"
    subprocess.run(["dpkg-deb", "-x", str(path), str(root)], check=True)
    yield path, root


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def test_control_fields_depend_on_debian_packages_with_psycopg_recommended(deb: tuple[Path, Path]) -> None:
    path, _ = deb
    assert field(path, "Package") == "netprobe-collector" and field(path, "Architecture") == "all"
    depends = field(path, "Depends")
    assert "python3-paho-mqtt (>= 1.6.1)" in depends and "python3-tomli" in depends and "psycopg" not in depends
    assert "python3-psycopg" in field(path, "Recommends")
    for heavy in ("scapy", "icmplib", "psutil", "speedtest", "netprobe-agent"):  # the node's, not the server's
        assert heavy not in depends, heavy


def test_files_are_its_own_units_config_and_modules_and_none_of_the_agent_package(deb: tuple[Path, Path]) -> None:
    path, _ = deb
    listing = subprocess.run(["dpkg-deb", "-c", str(path)], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    for wanted in ("/usr/bin/netprobe-collector", "/etc/netprobe/collector.toml",
                   *(f"/lib/systemd/system/{u}" for u in UNITS),
                   "/usr/lib/netprobe-collector/agent/collector/web/server.py",
                   "/usr/lib/netprobe-collector/agent/collector/report.py",
                   "/usr/lib/netprobe-collector/agent/cli/web.py"):  # fmt: skip
        assert wanted in files, wanted
    assert not {f for f in files if f in ("/usr/bin/netprobe",) or f.startswith("/usr/lib/python3/")}, "would clash"
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert re.search(r"-rw-r----- root/root .* \./etc/netprobe/collector\.toml", listing)
    conffiles = subprocess.run(["dpkg-deb", "--info", str(path), "conffiles"], capture_output=True, text=True).stdout
    assert conffiles.split() == ["/etc/netprobe/collector.toml"]


def test_the_shipped_config_loads_and_listens_on_loopback(deb: tuple[Path, Path]) -> None:
    _, root = deb
    cfg = parse_collector_config(tomllib.loads((root / "etc/netprobe/collector.toml").read_text()))
    assert cfg.web.listen.startswith("127.0.0.1:") and cfg.store.path.startswith("/var/lib/netprobe-collector/")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_units_verify_and_are_hardened(deb: tuple[Path, Path], tmp_path: Path) -> None:
    _, root = deb
    for unit in UNITS:  # verify checks that ExecStart exists: point it at the extracted wrapper
        text = (root / "lib/systemd/system" / unit).read_text()
        assert "User=netprobe-collector" in text and "ExecStart=/usr/bin/netprobe-collector " in text
        (tmp_path / unit).write_text(
            text.replace("/usr/bin/netprobe-collector", str(root / "usr/bin/netprobe-collector"))
        )
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / u) for u in UNITS)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for unit in UNITS:
        sec = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(tmp_path / unit)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        level = re.search(r"Overall exposure level for \S+: (\d+\.\d)", sec.stdout)
        assert level and float(level.group(1)) <= 2.5, sec.stdout[-2000:]


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs Debian's python3")
def test_the_packaged_modules_run_on_debians_python(deb: tuple[Path, Path]) -> None:
    _, root = deb
    wrapper = (root / "usr/bin/netprobe-collector").read_text()
    command = re.search(r"exec (/usr/bin/python3 -I -c '[^']+')", wrapper)
    assert command, wrapper
    code = (
        command.group(1).split("'")[1].replace("/usr/lib/netprobe-collector", str(root / "usr/lib/netprobe-collector"))
    )
    for sub in ("web", "report", "collect"):
        done = subprocess.run(["/usr/bin/python3", "-I", "-c", code, sub, "--help"], capture_output=True, text=True,
                              timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})  # fmt: skip
        assert done.returncode == 0 and "--config" in done.stdout, (sub, done.stderr)


def test_the_packaged_collector_starts_its_incident_engine_on_debians_python(
    deb: tuple[Path, Path], mosquitto: Any, tmp_path: Path
) -> None:
    # The engine is a child process: it must find the package's own modules as the launcher does
    # (python3 -I, /usr/lib/netprobe-collector first on the path), not `python -m agent`'s.
    _, root = deb
    wrapper = (root / "usr/bin/netprobe-collector").read_text()
    command = re.search(r"exec /usr/bin/python3 -I -c '([^']+)'", wrapper)
    assert command, wrapper
    code = command.group(1).replace("/usr/lib/netprobe-collector", str(root / "usr/lib/netprobe-collector"))
    broker = mosquitto()
    conf = tmp_path / "collector.toml"
    conf.write_text(collector_toml(broker.url, {"path": str(tmp_path / "c.db")}, incidents={"evaluate_every_s": 0.5}))
    log = tmp_path / "collector.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["/usr/bin/python3", "-I", "-c", code, "collect", "-c", str(conf)], stdout=out,
                                stderr=subprocess.STDOUT, cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})  # fmt: skip
        try:
            assert wait_until(lambda: "incidents: engine started" in log.read_text(), 20), log.read_text()
            assert "Traceback" not in log.read_text() and "exited" not in log.read_text(), log.read_text()
        finally:
            proc.terminate()
            proc.wait(15)
    assert proc.returncode == 0, log.read_text()
