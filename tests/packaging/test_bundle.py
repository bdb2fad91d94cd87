"""The offline bundle and the lean default install (issue 17), on a stock minimal Debian bookworm.

For amd64, arm64 and armhf: packaging/build-bundle makes the bundle (the agent, and the Debian
.debs a `debootstrap --variant=minbase` bookworm lacks for it and for the optional parts), its
install.sh installs it into a debootstrapped root of that architecture (arm64 and armhf run
under qemu-user-static) with the network cut off, and the agent runs there: --version, an ICMP
and a TCP probe on loopback, diagnose --json. Then the optional parts from the same bundle. And,
in an amd64 root with apt reading the bundle as its archive: what a default install downloads on
a node that has python3, and what each optional part adds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest

from agent import __version__
from tests.fixtures.packaging import PKG, run
from tests.packaging.roots import Root, wait_root

ARCH_PARAMS = [
    pytest.param("amd64"),
    pytest.param("arm64", marks=pytest.mark.slow),
    pytest.param("armhf", marks=pytest.mark.slow),
]
OPTIONAL = ("python3-scapy", "speedtest-cli")
# A default install on a node that already has python3 (Raspberry Pi OS, most Debian installs).
LEAN_LIMIT = 2_000_000


@dataclasses.dataclass
class Installed:
    arch: str
    root: Root
    tarball: Path
    bundle: str  # its directory inside the root
    install: subprocess.CompletedProcess[str]
    install_s: float


def dpkg_versions(root: Path) -> dict[str, str]:
    """Package -> version of what is installed in a root, read from its dpkg status (no qemu)."""
    installed = {}
    for stanza in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
        if fields.get("Status") == "install ok installed":
            installed[fields["Package"]] = fields["Version"]
    return installed


@pytest.fixture(scope="module", params=ARCH_PARAMS)
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def install(arch: str, root_for: Callable[[str], Root], bundle_for: Callable[[str], Path]) -> Installed:
    """The bundle for `arch`, unpacked in a fresh minbase root and installed by its install.sh."""
    tarball = bundle_for(arch)
    root = root_for(arch)
    run("tar", "-C", str(root.file("/root")), "-xzf", str(tarball))
    bundle = "/root/" + tarball.name.removesuffix(".tar.gz")
    start = time.monotonic()
    result = root.sh(f"in_root sh -c 'cd {bundle} && ./install.sh'", check=False)
    return Installed(arch, root, tarball, bundle, result, time.monotonic() - start)


# The installs of every architecture this run tests, side by side in the background from the
# first one asked for: under qemu they are CPU-bound, so arm64's and armhf's overlap the tests
# before them instead of following them.
_installs: dict[str, Future[Installed]] = {}
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="install")


@pytest.fixture(scope="module")
def installed(
    arch: str, request: pytest.FixtureRequest, root_for: Callable[[str], Root], bundle_for: Callable[[str], Path]
) -> Iterator[Installed]:
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        wanted = callspec.params.get("arch") if callspec and item.module is request.module else None
        if wanted and wanted not in _installs:
            _installs[wanted] = _pool.submit(install, wanted, root_for, bundle_for)
    if arch not in _installs:
        _installs[arch] = _pool.submit(install, arch, root_for, bundle_for)
    inst = _installs[arch].result(timeout=1800)
    yield inst
    inst.root.remove()


def in_root(inst: Installed, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    script = " ".join(["in_root", *(f"'{a}'" for a in args)])
    return inst.root.sh(script, timeout=timeout, check=False)


def test_bundle_holds_the_agent_and_exactly_what_a_minbase_root_lacks(installed: Installed) -> None:
    assert installed.tarball.name == f"netprobe-bundle_{__version__}_{installed.arch}.tar.gz"
    published = installed.tarball.with_name(installed.tarball.name + ".sha256").read_text().split()[0]
    assert published == hashlib.sha256(installed.tarball.read_bytes()).hexdigest()
    bundle = installed.root.file(installed.bundle)
    run("sha256sum", "--quiet", "-c", "SHA256SUMS", cwd=str(bundle))
    debs = {p.name.split("_")[0] for p in bundle.glob("*.deb")}
    assert {PKG, *OPTIONAL} <= debs
    # BASELINE is build-bundle's idea of a minbase bookworm, computed with apt from the archive;
    # the root is the real one from debootstrap. Same set, so the bundle leaves nothing out.
    minbase = set(dpkg_versions(wait_root(installed.arch)))
    assert set((bundle / "BASELINE").read_text().split()) == minbase
    assert not debs & minbase, "the bundle carries a package minbase already has"


def test_install_sh_installs_offline_and_leaves_the_optional_parts_out(installed: Installed) -> None:
    result = installed.install
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"\n{installed.arch}: install.sh took {installed.install_s:.1f} s")
    versions = dpkg_versions(installed.root.path)
    assert versions.get(PKG) == __version__
    assert not set(OPTIONAL) & set(versions), "Suggests, not installed by default"


def test_netprobe_version_runs_in_the_root(installed: Installed) -> None:
    result = in_root(installed, "netprobe", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"netprobe {__version__}"


def test_icmp_probe_to_loopback_as_root(installed: Installed) -> None:
    # Under qemu-user (arm64, armhf) setsockopt(SO_TIMESTAMPNS) is refused: the probe must fall
    # back to user-space receive times, not fail.
    result = in_root(installed, "netprobe", "probe", "icmp", "127.0.0.1", "--count", "2", "--json")
    reading = json.loads(result.stdout)
    assert reading["ok"], reading["error"]
    assert reading["fields"]["received"] == 2 and reading["fields"]["socket"] == "raw"
    assert result.returncode == 0


LISTENER = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16); "
    "open(sys.argv[1], 'w').write(str(s.getsockname()[1])); time.sleep(120)"
)


def test_tcp_probe_to_a_listener_in_the_same_namespace(installed: Installed) -> None:
    # The listener is the root's own python3, in the namespace the probe runs in.
    script = f"""
rm -f "$R/tmp/port"
in_root python3 -c "{LISTENER}" /tmp/port &
for i in $(seq 100); do [ -s "$R/tmp/port" ] && break; sleep 0.2; done
in_root netprobe probe tcp "127.0.0.1:$(cat "$R/tmp/port")" --json
"""
    result = installed.root.sh(script, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    reading = json.loads(result.stdout)
    assert reading["ok"] and reading["fields"]["received"] == reading["fields"]["sent"] > 0, reading


def test_diagnose_json_gives_a_verdict_without_network(installed: Installed) -> None:
    # The namespace has only loopback: no gateway, no DNS, no internet. diagnose must still answer.
    start = time.monotonic()
    result = in_root(installed, "netprobe", "diagnose", "--json", timeout=180)
    took = time.monotonic() - start
    print(f"\n{installed.arch}: diagnose took {took:.1f} s, exit {result.returncode}")
    report = json.loads(result.stdout)
    verdicts = {"healthy": 0, "degraded": 1, "down": 2}
    assert report["verdict"] in verdicts
    assert result.returncode == verdicts[report["verdict"]], result.stderr
    assert report["checks"] and report["readings"]
    assert report["verdict"] != "healthy", "no network at all cannot be healthy"


# --- what a default install downloads (amd64; the figures in docs/install.md) ----------------


def test_install_sh_adds_the_optional_parts_from_the_same_bundle_offline(
    root_for: Callable[[str], Root], bundle_for: Callable[[str], Path]
) -> None:
    # amd64 only: python3-scapy and speedtest-cli are Architecture: all, and byte-compiling scapy
    # under qemu costs ~50 s a run for nothing the amd64 install does not show.
    inst = install("amd64", root_for, bundle_for)
    try:
        assert inst.install.returncode == 0, inst.install.stdout + inst.install.stderr
        result = inst.root.sh(f"in_root sh -c 'cd {inst.bundle} && ./install.sh {' '.join(OPTIONAL)}'", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert set(OPTIONAL) <= set(dpkg_versions(inst.root.path))
        check = "import scapy.all, speedtest; print(scapy.VERSION)"
        assert inst.root.sh(f'in_root python3 -c "{check}"').stdout.strip() == "2.5.0"
    finally:
        inst.root.remove()


URIS = re.compile(r"^'(?P<uri>[^']+)' (?P<file>\S+) (?P<size>\d+) ", re.M)


@pytest.fixture(scope="module")
def archive_root(root_for: Callable[[str], Root], bundle_for: Callable[[str], Path]) -> Iterator[Root]:
    """A minbase root whose apt knows the amd64 bundle as its only archive."""
    tarball = bundle_for("amd64")
    root = root_for("amd64")
    run("tar", "-C", str(root.file("/srv")), "-xzf", str(tarball))
    bundle = "/srv/" + tarball.name.removesuffix(".tar.gz")
    root.file("/etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{bundle} ./\n")
    root.sh("in_root apt-get -q update")
    yield root
    root.remove()


def download(root: Root, *packages: str) -> dict[str, int]:
    """What `apt-get install --no-install-recommends PACKAGES` would download: .deb -> bytes."""
    result = root.sh(f"in_root apt-get install -qq --print-uris --no-install-recommends {' '.join(packages)}")
    return {m["file"].split("_")[0]: int(m["size"]) for m in URIS.finditer(result.stdout)}


def test_default_install_downloads_under_2_mb_where_python3_is_present(archive_root: Root) -> None:
    on_minbase = download(archive_root, PKG)
    archive_root.sh("in_root apt-get install -qq --no-install-recommends python3")
    lean = download(archive_root, PKG)
    scapy = {k: v for k, v in download(archive_root, PKG, "python3-scapy").items() if k not in lean}
    speedtest = {k: v for k, v in download(archive_root, PKG, "speedtest-cli").items() if k not in lean}
    figures = {
        "minbase": (len(on_minbase), sum(on_minbase.values())),
        "with python3": (len(lean), sum(lean.values())),
        "+ python3-scapy": (len(scapy), sum(scapy.values())),
        "+ speedtest-cli": (len(speedtest), sum(speedtest.values())),
    }
    print("\namd64 downloads: " + "; ".join(f"{k}: {n} packages, {b / 1e6:.2f} MB" for k, (n, b) in figures.items()))
    print("with python3: " + ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in sorted(lean.items())))
    print("+ python3-scapy: " + ", ".join(sorted(scapy)) + "; + speedtest-cli: " + ", ".join(sorted(speedtest)))
    assert PKG in lean and not set(OPTIONAL) & set(lean), lean
    assert sum(lean.values()) < LEAN_LIMIT, lean
    assert "python3-scapy" in scapy and "speedtest-cli" in speedtest
    assert "python3.11" in on_minbase, "minbase has no python3: the bundle brings it"
