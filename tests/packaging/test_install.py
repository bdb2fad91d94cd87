"""The Debian package, built and installed for real (issues 7, 17 and 18).

The .deb is built with packaging/build-deb and checked with lintian and systemd-analyze. As
root on Debian it is then installed with apt-get, which pulls Debian's own python3-paho-mqtt,
-icmplib, -dnspython, -psutil and (named on the command line: they are only Suggests) -scapy,
and the agent, private to the package in /usr/lib/netprobe, is run with /usr/bin/python3 and a
clean environment (no venv). An upgrade from the previous release's layout (the agent in
dist-packages) leaves nothing there. The last test removes and purges it and checks nothing is
left. Tests run in file order; any test that finds the package gone installs it again.

The install modifies this machine's /usr: expected in CI (root, throwaway machine). The offline
bundle and the regency's repository are tested in debootstrapped roots (test_bundle.py,
test_apt_repo.py).
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent import __version__
from agent.config import tomllib
from tests.fixtures.packaging import (
    AGENT_DIR,
    CONF,
    DEBIAN_12,
    LEGACY_AGENT,
    PKG,
    PRIVATE_LIB,
    ROOT,
    STATE,
    SYSTEM_ENV,
    apt_get,
    as_service_user,
    build_deb,
    dpkg_status,
    group_exists,
    leftovers,
    legacy_deb,
    notifications,
    notify_socket,
    pwd_entry,
    readings_from,
    requires_debian,
    requires_install,
    run,
    system_netprobe,
    unit_settings,
)
from tests.unit_sandbox import have_seccomp, mount_namespace, sandboxed

# As /usr/bin/netprobe does: the private directory first on the path.
ON_PRIVATE_PATH = f"import sys; sys.path.insert(0, {str(PRIVATE_LIB)!r})\n"


# --- the .deb itself (Debian, root not needed) ------------------------------------------------


@requires_debian
def test_deb_is_named_for_the_agent_version_and_declares_debian_dependencies(netprobe_deb: Path) -> None:
    assert netprobe_deb.name == f"netprobe-agent_{__version__}_all.deb"
    fields = {
        f: run("dpkg-deb", "-f", str(netprobe_deb), f).stdout.strip() for f in ("Version", "Architecture", "Depends")
    }
    assert fields["Version"] == __version__
    assert fields["Architecture"] == "all"
    depends = [d.strip() for d in fields["Depends"].split(",")]
    for package, version in DEBIAN_12.items():
        if package != "python3-scapy":
            assert f"{package} (>= {version})" in depends
    assert "python3:any (>= 3.11) | python3-tomli (>= 2.0.1)" in depends
    assert "netbase" in depends and "adduser" in depends
    # Lean by default (issue 17): the optional parts are Suggests, which apt never installs by
    # itself; as Recommends, scapy brought its own (ipython3, matplotlib, scipy): 190 MB.
    assert run("dpkg-deb", "-f", str(netprobe_deb), "Recommends").stdout.strip() == ""
    suggests = [d.strip() for d in run("dpkg-deb", "-f", str(netprobe_deb), "Suggests").stdout.split(",")]
    assert suggests == [f"python3-scapy (>= {DEBIAN_12['python3-scapy']})", "speedtest-cli"]


@requires_debian
def test_deb_ships_agent_command_unit_and_a_private_conffile_without_node_id(
    netprobe_deb: Path, tmp_path: Path
) -> None:
    listing = run("dpkg-deb", "-c", str(netprobe_deb)).stdout
    modes = {line.split()[-1].lstrip("."): line.split()[0] for line in listing.splitlines()}
    assert f"{AGENT_DIR}/__init__.py" in modes and f"{AGENT_DIR}/cli/__init__.py" in modes
    assert not [p for p in modes if p.startswith("/usr/lib/python3")], "the agent is private to the package"
    assert [p for p in modes if p.startswith("/usr/bin/")] == ["/usr/bin/", "/usr/bin/netprobe"]
    assert not [p for p in modes if "__pycache__" in p or p.endswith(".pyc")], "bytecode belongs to postinst"
    assert modes["/usr/bin/netprobe"] == "-rwxr-xr-x"
    assert "/lib/systemd/system/netprobe-agent.service" in modes
    assert modes["/etc/netprobe/agent.toml"] == "-rw-r-----"
    run("dpkg-deb", "-e", str(netprobe_deb), str(tmp_path / "control"))
    assert (tmp_path / "control" / "conffiles").read_text().split() == ["/etc/netprobe/agent.toml"]
    run("dpkg-deb", "-x", str(netprobe_deb), str(tmp_path / "root"))
    conf = tomllib.loads((tmp_path / "root" / "etc/netprobe/agent.toml").read_text())
    assert conf["node"]["id"] == "", "node.id must be left for the technician"
    assert (conf["site"]["kecamatan"], conf["site"]["desa"]) == ("", "")
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    assert conf["targets"] == example["targets"] and conf["mqtt"] == example["mqtt"]


@requires_debian
@pytest.mark.skipif(shutil.which("lintian") is None, reason="needs lintian (apt-get install lintian)")
def test_lintian_finds_no_errors_and_no_warnings(netprobe_deb: Path) -> None:
    # A deliberate exception is an override in the package, explained in the README.
    result = run("lintian", "--pedantic", "--info", str(netprobe_deb), check=False)
    tags = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


# --- installed with apt-get, run on Debian's python3 (Debian + root) --------------------------


@requires_install
def test_plain_apt_install_resolves_on_debian_12_without_the_optional_parts(
    netprobe_deb: Path, paths_before_install: set[str]
) -> None:
    # docs/install.md's plain `apt install ./netprobe-agent_*.deb`, apt's defaults (Recommends on),
    # simulated. What it downloads on a stock bookworm is measured in a debootstrapped root:
    # test_bundle.py::test_default_install_downloads_under_2_mb_where_python3_is_present.
    if dpkg_status():
        apt_get("purge", PKG)
    result = run("apt-get", "install", "-s", "-o", "APT::Install-Recommends=true", str(netprobe_deb), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^Inst netprobe-agent \(?{re.escape(__version__)}", result.stdout, re.M), result.stdout
    installs = re.findall(r"^Inst (\S+)", result.stdout, re.M)
    assert not {"python3-scapy", "speedtest-cli", "ipython3", "python3-matplotlib"} & set(installs), installs


@requires_install
def test_install_pulls_debian_12_library_versions_for_system_python(deb_installed: Path) -> None:
    versions = run("dpkg-query", "-W", "-f=${Package} ${Version}\\n", *DEBIAN_12).stdout
    got = dict(line.split() for line in versions.splitlines())
    for package, upstream in DEBIAN_12.items():
        assert got[package].startswith(upstream), f"{package} {got[package]}: not Debian 12's {upstream}"
    code = ON_PRIVATE_PATH + (
        "import agent, paho.mqtt, icmplib, dns.version, psutil, scapy, json;"
        "print(json.dumps([agent.__file__, paho.mqtt.__version__, icmplib.__version__,"
        " dns.version.version, psutil.__version__, scapy.VERSION]))"
    )
    out = run("/usr/bin/python3", "-c", code, env=dict(SYSTEM_ENV), cwd="/").stdout
    agent_file, *module_versions = json.loads(out)
    assert agent_file == str(AGENT_DIR / "__init__.py")
    assert [v.split("+")[0] for v in module_versions] == list(DEBIAN_12.values())


@requires_install
def test_netprobe_version_runs_on_system_python(deb_installed: Path) -> None:
    result = system_netprobe("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"netprobe {__version__}"
    assert run("head", "-1", "/usr/bin/netprobe").stdout.strip() == "#!/usr/bin/python3"


@requires_install
def test_the_private_agent_neither_shadows_nor_is_shadowed_by_another_agent_package(
    deb_installed: Path, tmp_path: Path
) -> None:
    # Issue 18: `agent` is a common name. Not on python3's path, ours collides with nobody's ...
    plain = run("/usr/bin/python3", "-c", "import agent", check=False, env=dict(SYSTEM_ENV), cwd="/")
    assert plain.returncode == 1 and "No module named 'agent'" in plain.stderr, plain.stderr
    # ... and another `agent` (on PYTHONPATH, in the working directory) does not replace ours.
    decoy = tmp_path / "agent"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the wrong agent was imported')\n")
    env = {**SYSTEM_ENV, "PYTHONPATH": str(tmp_path)}
    result = run("/usr/bin/netprobe", "--version", check=False, env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"netprobe {__version__}"


IMPORT_ALL = (
    ON_PRIVATE_PATH
    + """
import importlib, json, pkgutil, agent
from agent.cli import COMMANDS
failed = {}
for module in pkgutil.walk_packages(agent.__path__, "agent."):
    if not module.name.endswith("__main__"):
        try:
            importlib.import_module(module.name)
        except Exception as exc:
            failed[module.name] = repr(exc)
print(json.dumps({"failed": failed, "commands": [name for name, _, _ in COMMANDS]}))
"""
)


@requires_install
def test_every_agent_module_and_command_loads_on_debians_python3(deb_installed: Path) -> None:
    # Import-time use of an API newer than Debian's libraries shows here, module by module.
    result = run("/usr/bin/python3", "-c", IMPORT_ALL, env=dict(SYSTEM_ENV), cwd="/")
    report = json.loads(result.stdout)
    assert report["failed"] == {}
    for command in ["probe", "diagnose", "check-config", *report["commands"]]:
        help_run = system_netprobe(command, "--help")
        assert help_run.returncode == 0 and "Traceback" not in help_run.stderr, (command, help_run.stderr)


@requires_install
def test_postinst_makes_system_account_private_conffile_and_state_dir(deb_installed: Path) -> None:
    user = pwd_entry()
    assert user is not None and user.pw_uid < 1000, "netprobe must be a system user"
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert group_exists("netprobe")
    gid = int(run("getent", "group", "netprobe").stdout.split(":")[2])
    conf = CONF.stat()
    assert (stat.S_IMODE(conf.st_mode), conf.st_uid, conf.st_gid) == (0o640, 0, gid)
    state = STATE.stat()
    assert (stat.S_IMODE(state.st_mode), state.st_uid, state.st_gid) == (0o750, user.pw_uid, gid)
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", PKG).stdout
    assert str(CONF) in conffiles
    assert (AGENT_DIR / "__pycache__").is_dir(), "postinst byte-compiles the private agent"
    assert not LEGACY_AGENT.exists()


@requires_install
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_installed_unit_verifies_cleanly(deb_installed: Path) -> None:
    # verify also checks that ExecStart= exists and Documentation=man:netprobe(1) resolves.
    result = run("systemd-analyze", "verify", "/lib/systemd/system/netprobe-agent.service", check=False)
    assert (result.returncode, result.stderr.strip()) == (0, ""), result.stderr


@requires_install
def test_check_config_accepts_the_conffile_once_a_node_id_is_set(deb_installed: Path) -> None:
    text = CONF.read_text()
    assert re.search(r'^id = ""', text, re.M)
    CONF.write_text(re.sub(r'^id = "".*$', 'id = "Bad Id"', text, count=1, flags=re.M))
    bad = system_netprobe("check-config", str(CONF))
    assert bad.returncode == 78
    assert "node.id" in bad.stderr and "Traceback" not in bad.stderr
    CONF.write_text(re.sub(r'^id = "".*$', 'id = "muba-pkg-test-01"', text, count=1, flags=re.M))
    good = system_netprobe("check-config", str(CONF))
    assert good.returncode == 0, good.stderr
    assert "node 'muba-pkg-test-01'" in good.stdout


@requires_install
def test_diagnose_json_on_debian_libraries_is_healthy_against_loopback_peers(
    deb_installed: Path, tmp_path: Path, dns_server: Any, tcp_listener: Any, http_server: Any
) -> None:
    # Only loopback peers: no public traffic from the test.
    config = tmp_path / "diagnose.toml"
    config.write_text(
        f"""
[node]
id = "muba-pkg-test-01"
state_dir = "{tmp_path}"

[[targets]]
kind = "icmp"
target = "127.0.0.1"
name = "gateway"
role = "gateway"
count = 3
packet_interval = 0.05

[[targets]]
kind = "tcp"
target = "{tcp_listener.address}"
name = "uplink"
role = "internet"

[[targets]]
kind = "dns"
target = "node.test"
name = "dns"
role = "dns-system"
server = "{dns_server.address}"

[[targets]]
kind = "http"
target = "http://{http_server.address}/ok"
name = "web"
role = "web"

# Its trace and dish check would leave loopback.
[linktype]
enabled = false
"""
    )
    result = system_netprobe("diagnose", "-c", str(config), "--json", timeout=30)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert [r["error"] for r in report["readings"] if not r["ok"]] == []
    assert report["verdict"] == "healthy" and result.returncode == 0
    assert {"icmp", "tcp", "dns", "http"} <= {r["measurement"] for r in report["readings"]}
    assert dns_server.hits and tcp_listener.hits and http_server.hits == ["/ok"]


@requires_install
@pytest.mark.skipif(not (shutil.which("setpriv") and shutil.which("unshare")), reason="needs setpriv and unshare")
def test_icmp_works_as_netprobe_with_only_the_units_ambient_cap_net_raw(deb_installed: Path) -> None:
    # A fresh network namespace: its ping_group_range is the kernel default "1 0" (no
    # unprivileged ping sockets), so what makes ICMP work is the capability alone.
    def probe(caps: bool) -> subprocess.CompletedProcess[str]:
        inner = as_service_user("/usr/bin/netprobe", "probe", "icmp", "127.0.0.1", "--count", "2", "--json", caps=caps)
        script = 'ip link set lo up && test "$(cut -f2 /proc/sys/net/ipv4/ping_group_range)" = 0 && exec "$@"'
        return run("unshare", "--net", "sh", "-c", script, "sh", *inner, check=False, env=dict(SYSTEM_ENV), cwd="/")

    with_cap = probe(caps=True)
    assert with_cap.returncode == 0, with_cap.stderr
    reading = json.loads(with_cap.stdout)
    assert reading["ok"] and reading["fields"]["received"] == 2 and reading["fields"]["socket"] == "raw"
    without = probe(caps=False)
    assert without.returncode == 77, without.stdout + without.stderr
    assert json.loads(without.stdout)["error"]["code"] == "permission"


CLOCK_PROBE = (
    ON_PRIVATE_PATH
    + """
import ctypes, json
from agent import clock
libc = ctypes.CDLL(None, use_errno=True)
state = libc.adjtimex(ctypes.create_string_buffer(512))
hostname = libc.sethostname(b"x", 1)
print(json.dumps([state, hostname, ctypes.get_errno(), clock.clock_synced()]))
"""
)


@requires_install
def test_agent_reads_the_clock_state_behind_the_units_syscall_filter(deb_installed: Path) -> None:
    if not have_seccomp():
        pytest.skip("needs Debian's python3-seccomp to rebuild the unit's syscall filter")

    def under(unit: dict[str, list[str]]) -> list[Any]:
        cmd = as_service_user(*sandboxed(unit, ["/usr/bin/python3", "-c", CLOCK_PROBE]))
        result = run(*cmd, check=False, env=dict(SYSTEM_ENV), cwd="/")
        assert result.returncode == 0, result.stderr  # -31 would be SIGSYS: killed by the filter
        return list(json.loads(result.stdout))

    unit = unit_settings()
    adjtimex, sethostname, errno_after, synced = under(unit)
    assert adjtimex >= 0, "adjtimex must get through (read-only clock state)"
    assert (sethostname, errno_after) == (-1, errno.EPERM)
    assert isinstance(synced, bool)
    # Control: without the unit's line that allows the clock calls again, the same call is
    # refused, so the filter above was really in force; clock.py then falls back without dying.
    without = {**unit, "SystemCallFilter": [v for v in unit["SystemCallFilter"] if "clock_adjtime" not in v]}
    refused, _, _, fallback = under(without)
    assert refused == -1 and isinstance(fallback, bool)


@requires_install
@pytest.mark.skipif(not shutil.which("ip"), reason="needs iproute2 (ip)")
def test_path_probe_on_debians_scapy_traces_two_hops_behind_the_units_sandbox(
    deb_installed: Path, two_hop_path: str
) -> None:
    # scapy needs raw and packet sockets: CAP_NET_RAW (ambient) and AF_PACKET are all it gets.
    if not have_seccomp():
        pytest.skip("needs Debian's python3-seccomp to rebuild the unit's syscall filter")
    unit = unit_settings()
    for mode in ("icmp", "udp", "tcp"):
        probe = ["/usr/bin/netprobe", "probe", "path", "203.0.113.2", "--mode", mode, "--json"]
        cmd = ["ip", "netns", "exec", two_hop_path, *mount_namespace(unit), *as_service_user(*sandboxed(unit, probe))]
        result = run(*cmd, check=False, env=dict(SYSTEM_ENV), cwd="/", timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        fields = json.loads(result.stdout)["fields"]
        hops = [hop.split(":")[:2] for hop in fields["hops"].split()]
        assert hops == [["1", "198.51.100.1"], ["2", "203.0.113.2"]], (mode, fields)
        assert fields["reached"] is True


RELOADED_TARGET = """
[[targets]]
kind = "icmp"
target = "127.0.0.2"
name = "added-on-reload"
interval = 1
timeout = 0.5
count = 1
"""


@requires_install
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)")
def test_run_as_the_service_publishes_readings_to_a_local_mosquitto(
    deb_installed: Path, tmp_path: Path, broker: Any, subscriber: Any, tcp_listener: Any
) -> None:
    if system_netprobe("run", "--help").returncode != 0:
        pytest.skip("`netprobe run` is not in this tree yet (issue 4, the daemon): nothing to start")
    original = CONF.read_text()
    unit = unit_settings()
    # As systemd starts it: the unit's file-system view, user, capabilities and syscall filter
    # (tests/unit_sandbox.py), its ExecStart=, the packaged config.
    if not have_seccomp():
        pytest.skip("needs Debian's python3-seccomp to rebuild the unit's syscall filter")
    service = mount_namespace(unit) + as_service_user(*sandboxed(unit, unit["ExecStart"][-1].split()))
    env = {**SYSTEM_ENV, "HOME": str(STATE)}

    # As installed, before the technician sets the node id: the agent says what is missing.
    CONF.write_text(re.sub(r'^id = ".*"', 'id = ""', original, count=1, flags=re.M))
    blank = run(*service, check=False, env=env, cwd=str(STATE), timeout=30)
    assert blank.returncode == 78, blank.stderr
    assert "node.id is not set" in blank.stderr and "Traceback" not in blank.stderr

    node = "muba-pkg-run-01"
    CONF.write_text(
        f"""[node]
id = "{node}"

[site]
kecamatan = "Sekayu"
desa = "Balai Agung"

[[targets]]
kind = "icmp"
target = "127.0.0.1"
name = "gateway"
interval = 1
timeout = 0.5
count = 2
packet_interval = 0.05

[[targets]]
kind = "tcp"
target = "{tcp_listener.address}"
name = "uplink"
interval = 1
timeout = 0.5
count = 1

[mqtt]
broker = "{broker.url}"
batch = false

[daemon]
splay = 0
host_interval = 1

[linktype]
enabled = false
"""
    )
    sock, sock_path = notify_socket()
    env.update(NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="2000000")
    sub = subscriber(broker, "netprobe/#")
    log = tmp_path / "agent.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(service, env=env, cwd=str(STATE), stdout=log_file, stderr=subprocess.STDOUT)
    try:
        assert sub.wait_for(lambda _: len(readings_from(sub, node)) >= 4, timeout=20), log.read_text()
        # ExecReload=: a new target in the config, then SIGHUP; the same process measures it.
        with open(CONF, "a") as conf:
            conf.write(RELOADED_TARGET)
        proc.send_signal(signal.SIGHUP)
        reloaded = sub.wait_for(lambda _: any(r["target"] == "127.0.0.2" for r in readings_from(sub, node)), 15)
        assert reloaded, log.read_text()
        assert proc.poll() is None, "SIGHUP must reload, not stop"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"SIGTERM did not stop the agent in 10 s:\n{log.read_text()}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        CONF.write_text(original)
        told = notifications(sock)
        sock.close()
        shutil.rmtree(os.path.dirname(sock_path))
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    readings = readings_from(sub, node)
    icmp = [r for r in readings if r["measurement"] == "icmp"]
    assert icmp and all(r["ok"] and r["fields"]["socket"] == "raw" for r in icmp), icmp
    assert any(r["measurement"] == "tcp" and r["ok"] for r in readings)
    host = [r for r in readings if r["measurement"] == "host"]  # psutil 5.9.4, behind the sandbox
    assert host and all(r["ok"] and r["fields"]["mem_total_mb"] > 0 for r in host), host
    assert all(0 <= r["fields"]["disk_used_pct"] <= 100 for r in host), "the state dir's file system"
    seqs = [r["seq"] for r in readings]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert "READY=1" in told and "WATCHDOG=1" in told, told
    spool_files = [p for p in STATE.iterdir()]
    assert spool_files and all(p.stat().st_uid == pwd.getpwnam("netprobe").pw_uid for p in spool_files)


@requires_install
def test_postinst_runs_again_cleanly_and_never_touches_the_spool(deb_installed: Path) -> None:
    # Issue 17's safe upgrade: dpkg may run postinst again (dpkg --configure after an interrupted
    # run, dpkg-reconfigure); it must succeed every time and leave the spool alone.
    user = pwd_entry()
    assert user is not None
    spool = STATE / "spool.sqlite3"
    spool.write_bytes(b"unsent readings")
    os.chown(spool, user.pw_uid, user.pw_gid)
    os.chmod(spool, 0o600)
    before = (spool.stat(), CONF.read_text(), CONF.stat())
    postinst = Path(f"/var/lib/dpkg/info/{PKG}.postinst")
    for _ in range(2):
        result = run(str(postinst), "configure", __version__, check=False, env=dict(SYSTEM_ENV), cwd="/")
        assert result.returncode == 0, result.stdout + result.stderr
    after = (spool.stat(), CONF.read_text(), CONF.stat())
    for was, now in ((before[0], after[0]), (before[2], after[2])):
        assert (was.st_mode, was.st_uid, was.st_gid, was.st_mtime_ns) == (
            now.st_mode,
            now.st_uid,
            now.st_gid,
            now.st_mtime_ns,
        )
    assert before[1] == after[1] and spool.read_bytes() == b"unsent readings"
    assert pwd_entry() == user
    spool.unlink()


@requires_install
def test_upgrade_from_the_dist_packages_layout_leaves_nothing_there_and_keeps_config_spool_account(
    netprobe_deb: Path, paths_before_install: set[str], tmp_path: Path
) -> None:
    # Issue 18: nodes run 0.1.0, the agent in dist-packages. Upgrading must move it, with the old
    # package's own prerm (py3clean) and the new files, and keep what the technician made.
    if dpkg_status():
        apt_get("purge", PKG)
    old = legacy_deb(netprobe_deb, tmp_path, f"{__version__}~legacy1")
    apt_get("install", "--no-install-recommends", str(old))
    assert (LEGACY_AGENT / "__init__.py").exists() and not PRIVATE_LIB.exists(), "not the old layout"
    assert (LEGACY_AGENT / "__pycache__").is_dir(), "0.1.0's postinst byte-compiles with py3compile"
    assert system_netprobe("--version").returncode == 0
    # Bytecode no package lists (a python3 run as root in dist-packages): py3clean leaves it,
    # so dpkg cannot remove the directory; the new postinst must.
    stray = LEGACY_AGENT / "__pycache__" / "removed_module.cpython-311.pyc"
    stray.write_bytes(b"stale")

    conf = re.sub(r'^id = ".*"', 'id = "muba-upgrade-01"', CONF.read_text(), count=1, flags=re.M)
    CONF.write_text(conf)
    user = pwd_entry()
    assert user is not None
    spool = STATE / "spool.sqlite3"
    spool.write_bytes(b"unsent readings")
    os.chown(spool, user.pw_uid, user.pw_gid)

    apt_get("install", "--no-install-recommends", str(netprobe_deb))
    assert run("dpkg-query", "-W", "-f=${Version}", PKG).stdout == __version__
    result = system_netprobe("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"netprobe {__version__}", result.stderr
    assert not LEGACY_AGENT.exists(), sorted(str(p) for p in LEGACY_AGENT.rglob("*"))
    assert (AGENT_DIR / "__init__.py").exists() and (AGENT_DIR / "__pycache__").is_dir()
    assert CONF.read_text() == conf, "the technician's config must survive an upgrade"
    st = CONF.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, user.pw_gid)
    assert spool.read_bytes() == b"unsent readings"
    assert pwd_entry() == user, "same account, same uid"


@requires_install
def test_upgrade_to_a_newer_build_keeps_the_technicians_config_spool_and_account(
    deb_installed: Path, tmp_path: Path
) -> None:
    newer = f"{__version__}+upgrade1"
    deb = build_deb(tmp_path, version=newer)
    conf = re.sub(r'^id = ".*"', 'id = "muba-upgrade-02"', CONF.read_text(), count=1, flags=re.M)
    CONF.write_text(conf)
    user = pwd_entry()
    assert user is not None
    spool = STATE / "spool.sqlite3"
    spool.write_bytes(b"more unsent readings")
    os.chown(spool, user.pw_uid, user.pw_gid)

    apt_get("install", "--no-install-recommends", str(deb))
    assert system_netprobe("--version").stdout.strip() == f"netprobe {newer}"
    assert CONF.read_text() == conf
    assert spool.read_bytes() == b"more unsent readings"
    assert pwd_entry() == user


@requires_install
def test_remove_keeps_config_and_purge_leaves_no_file_user_or_group(
    deb_installed: Path, paths_before_install: set[str]
) -> None:
    user = pwd_entry()
    assert user is not None
    if shutil.which("systemctl"):  # the technician's `systemctl enable`, offline
        run("systemctl", "enable", "netprobe-agent.service")
    spool = STATE / "spool.db"
    spool.write_bytes(b"readings")
    os.chown(spool, user.pw_uid, user.pw_gid)
    stray = Path("/etc/netprobe/mqtt-password")  # a technician's file beside the conffile
    stray.write_text("secret\n")

    apt_get("remove", PKG)
    assert dpkg_status() == "rc"
    assert not Path("/usr/bin/netprobe").exists()
    assert not PRIVATE_LIB.exists(), "prerm must take the bytecode too, so that no directory stays"
    assert not Path("/lib/systemd/system/netprobe-agent.service").exists()
    assert CONF.exists() and spool.exists() and pwd_entry() is not None, "remove keeps config, spool, account"

    apt_get("purge", PKG)
    assert dpkg_status() == ""
    assert pwd_entry() is None
    assert not group_exists("netprobe")
    assert leftovers(owner=user) - paths_before_install == set(), "files named for netprobe or of its account remain"
