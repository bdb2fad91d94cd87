"""The regency's apt repository and the daily update (issue 17), end to end in a bookworm root.

A node: a minimal amd64 bookworm root with netprobe-agent version N from the offline bundle, a
technician's config, and a spool the agent itself filled (`netprobe run`, no broker). The
regency: packaging/apt-repo/build-repo publishes version N+1 (whose default config changed too),
signed with a throwaway key, served over HTTP by python's http.server on 127.0.0.1 inside the
root's own network namespace. The node installs netprobe-apt-source and runs what its timer
runs, /usr/sbin/netprobe-update: a repository signed by another key is refused; the right one
upgrades the agent, keeps the config, the spool and its sequence numbers, and takes postinst's
restart path. systemd does not run in a chroot: a stand-in /usr/bin/systemctl records how the
maintainer scripts call it, and /run/systemd/system exists so that they believe it does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from agent import __version__
from tests.fixtures.packaging import BUILD_REPO, PKG, ROOT, build_deb, run
from tests.packaging.roots import Root

NEXT = f"{__version__}+repo1"
PORT = 8931  # the root's namespace is fresh: no other listener can hold it
URL = f"http://127.0.0.1:{PORT}/"
NODE = "muba-repo-test-01"
CALLS = "/var/log/systemctl-calls"
STUB_SYSTEMCTL = f"""#!/bin/sh
# Test stand-in: systemd does not run in a chroot. Records each call of the maintainer scripts.
echo "$*" >> {CALLS}
exit 0
"""
NODE_CONFIG = f"""[node]
id = "{NODE}"

[[targets]]
kind = "tcp"
target = "127.0.0.1:9"
name = "nothing-listens"
interval = 1
timeout = 0.5
count = 1

[daemon]
splay = 0
host_interval = 1

[linktype]
enabled = false
"""


@dataclasses.dataclass
class Node:
    root: Root
    config: bytes
    spool_sha256: str
    spool_status: dict[str, object]


@dataclasses.dataclass
class Repos:
    good: Path
    wrong_key: Path
    key_file: Path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spool_status(root: Root) -> dict[str, object]:
    result = root.sh("in_root netprobe spool status --json -c /etc/netprobe/agent.toml")
    report = json.loads(result.stdout)
    return {k: report[k] for k in ("rows", "bytes", "last_seq")}


def dpkg_version(root: Root, package: str) -> str:
    return root.sh(f"in_root dpkg-query -W -f '${{Version}}' {package}", check=False).stdout


def systemctl_calls(root: Root) -> list[str]:
    calls = root.file(CALLS)
    return calls.read_text().splitlines() if calls.exists() else []


@pytest.fixture(scope="module")
def node(root_for: Callable[[str], Root], bundle_for: Callable[[str], Path]) -> Iterator[Node]:
    tarball = bundle_for("amd64")
    root = root_for("amd64")
    root.file("/usr/bin/systemctl").write_text(STUB_SYSTEMCTL)
    os.chmod(root.file("/usr/bin/systemctl"), 0o755)
    root.file("/run/systemd/system").mkdir(parents=True)
    run("tar", "-C", str(root.file("/root")), "-xzf", str(tarball))
    bundle = "/root/" + tarball.name.removesuffix(".tar.gz")
    root.sh(f"in_root sh -c 'cd {bundle} && ./install.sh'")
    assert dpkg_version(root, PKG) == __version__
    assert not [c for c in systemctl_calls(root) if "try-restart" in c], "a first install starts nothing"

    # The technician's config, then readings the agent spooled itself (no broker: they stay).
    conf = root.file("/etc/netprobe/agent.toml")
    conf.write_text(NODE_CONFIG)
    agent = "in_root setpriv --reuid=netprobe --regid=netprobe --init-groups"
    root.sh(f"{agent} timeout -s TERM 6 netprobe run -c /etc/netprobe/agent.toml >/dev/null || [ $? = 124 ]")
    spool = root.file("/var/lib/netprobe/spool.sqlite3")
    status = spool_status(root)
    last_seq = status["last_seq"]
    assert status["rows"] and isinstance(last_seq, dict) and last_seq.get(NODE, 0) >= 1, status
    yield Node(root, conf.read_bytes(), sha256(spool), status)
    root.remove()


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repos]:
    """Version N+1 published twice: signed by the regency's key, and by a key nobody trusts."""
    if shutil.which("gpg") is None or shutil.which("apt-ftparchive") is None:
        pytest.skip("needs gpg (gnupg) and apt-ftparchive (apt-utils)")
    out = tmp_path_factory.mktemp("repos")
    # N+1 from a copy of this tree whose default config gained a line: an upgrade that changes
    # the conffile, where dpkg would ask if nobody said --force-confold.
    tree = out / "tree"
    for part in ("agent", "packaging", "systemd"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", tree / "README.md")
    example = (ROOT / "config.example.toml").read_text()
    (tree / "config.example.toml").write_text(example + "\n# A setting of the next version.\n")
    debs = out / "debs"
    debs.mkdir()
    build_deb(debs, version=NEXT, tree=tree)

    homes = [Path(tempfile.mkdtemp(prefix="np-gpg-")) for _ in range(2)]  # short: gpg-agent's socket
    try:
        built = []
        for home, name in zip(homes, ("good", "wrong-key")):
            os.chmod(home, 0o700)
            env = {**os.environ, "GNUPGHOME": str(home)}
            uid = f"netprobe {name} test key <{name}@repo.test.invalid>"
            run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "1d", env=env)
            cmd = ["bash", str(BUILD_REPO), "-k", uid, "-u", URL, "-o", str(out / name), str(debs)]
            run(*cmd, env=env)
            built.append(out / name)
        yield Repos(built[0], built[1], built[0] / "netprobe-archive-keyring.gpg")
    finally:
        for home in homes:
            run("gpgconf", "--kill", "gpg-agent", env={**os.environ, "GNUPGHOME": str(home)}, check=False)
            shutil.rmtree(home, ignore_errors=True)


def serve_and_update(root: Root, repo: Path, log: Path) -> subprocess.CompletedProcess[str]:
    """http.server on 127.0.0.1 in the root's namespace serving `repo`, then netprobe-update."""
    script = f"""
python3=/usr/bin/python3; [ -x "$python3" ] || python3=python3
"$python3" -u -m http.server --bind 127.0.0.1 --directory '{repo}' {PORT} > '{log}' 2>&1 &
for i in $(seq 100); do grep -q Serving '{log}' && break; sleep 0.1; done
in_root netprobe-update
"""
    return root.sh(script, check=False, timeout=300)


def test_the_repository_is_signed_and_indexes_every_package_for_every_arch(repos: Repos) -> None:
    dists = repos.good / "dists" / "bookworm"
    release = (dists / "Release").read_text()
    assert re.search(r"^Origin: netprobe-muba$", release, re.M) and re.search(r"^Suite: bookworm$", release, re.M)
    assert re.search(r"^Architectures: amd64 arm64 armhf$", release, re.M)
    run("gpgv", "--keyring", str(repos.key_file), str(dists / "InRelease"))
    run("gpgv", "--keyring", str(repos.key_file), str(dists / "Release.gpg"), str(dists / "Release"))
    wrong = repos.wrong_key / "dists" / "bookworm"
    refused = run("gpgv", "--keyring", str(repos.key_file), str(wrong / "InRelease"), check=False)
    assert refused.returncode != 0, "the other key's signature must not verify with the regency's key"
    for arch in ("amd64", "arm64", "armhf"):
        packages = (dists / "main" / f"binary-{arch}" / "Packages").read_text()
        assert re.findall(r"^Package: (\S+)$", packages, re.M) == [PKG, "netprobe-apt-source"], packages
        assert f"Version: {NEXT}" in packages
    sources = (repos.good / "netprobe.sources").read_text()
    assert f"URIs: {URL}" in sources
    assert "Signed-By: /usr/share/keyrings/netprobe-archive-keyring.gpg" in sources


def test_the_timer_spreads_300_nodes_over_hours_and_catches_up_after_a_power_cut() -> None:
    timer = (ROOT / "packaging" / "apt-repo" / "netprobe-update.timer").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", timer, re.M))
    assert settings["RandomizedDelaySec"] == "6h"
    assert settings["FixedRandomDelay"] == "true" and settings["Persistent"] == "true"
    if shutil.which("systemd-analyze"):
        run("systemd-analyze", "calendar", settings["OnCalendar"])


def test_a_repository_signed_by_another_key_is_refused(node: Node, repos: Repos, tmp_path: Path) -> None:
    apt_source = next((repos.good / "pool" / "main" / "netprobe-apt-source").glob("*.deb"))
    shutil.copy(apt_source, node.root.file("/tmp"))
    node.root.sh(f"in_root apt-get install -y -q /tmp/{apt_source.name}")
    assert node.root.file("/etc/apt/sources.list.d/netprobe.sources").read_text().count(URL) == 1
    result = serve_and_update(node.root, repos.wrong_key, tmp_path / "http.log")
    assert result.returncode != 0, result.stdout
    assert re.search(r"NO_PUBKEY|not signed|couldn't be verified", result.stdout + result.stderr), result.stderr
    assert dpkg_version(node.root, PKG) == __version__
    assert "/pool/" not in (tmp_path / "http.log").read_text(), "nothing may be fetched from it"


def test_netprobe_update_upgrades_keeping_config_spool_and_account_and_restarts_the_agent(
    node: Node, repos: Repos, tmp_path: Path
) -> None:
    root = node.root
    debian_lists = sorted(p.name for p in root.file("/var/lib/apt/lists").glob("*_Packages"))
    passwd_before = root.file("/etc/passwd").read_text()
    calls_before = len(systemctl_calls(root))
    if dpkg_version(root, "netprobe-apt-source") == "":
        apt_source = next((repos.good / "pool" / "main" / "netprobe-apt-source").glob("*.deb"))
        shutil.copy(apt_source, root.file("/tmp"))
        root.sh(f"in_root apt-get install -y -q /tmp/{apt_source.name}")

    start = time.monotonic()
    log = tmp_path / "http.log"
    result = serve_and_update(root, repos.good, log)
    took = time.monotonic() - start
    print(f"\nnetprobe-update (index and upgrade over loopback): {took:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr

    assert dpkg_version(root, PKG) == NEXT
    version = root.sh("in_root netprobe --version").stdout.strip()
    assert version == f"netprobe {NEXT}"
    conf = root.file("/etc/netprobe/agent.toml")
    assert conf.read_bytes() == node.config, "the technician's config must stay"
    assert "A setting of the next version" in root.file("/etc/netprobe/agent.toml.dpkg-dist").read_text()
    st = conf.stat()
    groups = dict(re.findall(r"^([^:]+):x:(\d+):", root.file("/etc/group").read_text(), re.M))
    gid = int(groups["netprobe"])
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 0, gid)
    assert sha256(root.file("/var/lib/netprobe/spool.sqlite3")) == node.spool_sha256
    assert spool_status(root) == node.spool_status
    assert root.file("/etc/passwd").read_text() == passwd_before, "same account, same uid"

    # postinst's restart path: deb-systemd-invoke try-restart, which calls systemctl.
    assert "try-restart netprobe-agent.service" in systemctl_calls(root)[calls_before:]
    # Only the regency's index and the new package came over the wire; Debian's lists stayed.
    fetched = re.findall(r'"GET (\S+) HTTP', log.read_text())
    assert fetched == [
        "/dists/bookworm/InRelease",
        "/dists/bookworm/main/binary-amd64/Packages.xz",
        f"/pool/main/{PKG}/{PKG}_{NEXT.replace('+', '%2b')}_all.deb",
    ], fetched
    assert debian_lists, "debootstrap leaves Debian's list in the root"
    ours = f"127.0.0.1:{PORT}_dists_bookworm_main_binary-amd64_Packages"
    assert sorted(p.name for p in root.file("/var/lib/apt/lists").glob("*_Packages")) == sorted([*debian_lists, ours])
