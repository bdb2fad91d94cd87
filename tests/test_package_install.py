"""The Debian package, built and installed for real (issue 7).

The .deb is built with packaging/build-deb and checked with lintian and systemd-analyze. As
root on Debian it is then installed with apt-get, which pulls Debian's own python3-paho-mqtt,
-icmplib, -dnspython, -psutil and -scapy, and the agent is run with /usr/bin/python3 and a clean
environment (no venv). The last test removes and purges it and checks nothing is left. Tests run
in file order; any test that finds the package gone installs it again.

The install modifies the system python's dist-packages: expected in CI (root, throwaway machine).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from agent import __version__
from agent.config import tomllib
from tests.helpers import is_root
from tests.unit_sandbox import have_seccomp, mount_namespace, sandboxed, seccomp_spec

ROOT = Path(__file__).resolve().parents[1]
PKG = "netprobe-agent"
UNIT = ROOT / "systemd" / "netprobe-agent.service"
CONF = Path("/etc/netprobe/agent.toml")
STATE = Path("/var/lib/netprobe")
DIST_AGENT = Path("/usr/lib/python3/dist-packages/agent")
# Debian 12's versions, which the agent must run on (issue 7's table).
DEBIAN_12 = {
    "python3-paho-mqtt": "1.6.1",
    "python3-icmplib": "2.1.1",
    "python3-dnspython": "2.3.0",
    "python3-psutil": "5.9.4",
    "python3-scapy": "2.5.0",
}
# The clean environment of a node: Debian's python3, no venv, no PYTHONPATH.
SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
# Where an install could leave something behind.
LOCK = "/run/lock/netprobe-package-test.lock"
WATCHED = ("/etc", "/var/lib", "/var/cache", "/var/log", "/usr", "/lib", "/run", "/srv", "/opt")


def is_debian() -> bool:
    return os.path.exists("/etc/debian_version") and all(shutil.which(t) for t in ("dpkg-deb", "dpkg-query"))


requires_debian = pytest.mark.skipif(not is_debian(), reason="builds a .deb: needs Debian's dpkg-deb")
requires_install = pytest.mark.skipif(
    not (is_debian() and is_root() and shutil.which("apt-get")),
    reason="installs the .deb with apt-get: needs a Debian machine and root (CI runs as root)",
)


def run(*args: str, check: bool = True, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def system_netprobe(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """/usr/bin/netprobe on Debian's python3, as a node runs it (cwd outside the source tree)."""
    kwargs.setdefault("cwd", "/")
    return run("/usr/bin/netprobe", *args, check=False, timeout=timeout, env=dict(SYSTEM_ENV), **kwargs)


def unit_settings(path: Path = UNIT) -> dict[str, list[str]]:
    """Key -> values of a unit file (systemd allows repeated keys)."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def as_service_user(*args: str, caps: bool = True) -> list[str]:
    """setpriv with the unit's User=, AmbientCapabilities=, CapabilityBoundingSet= and
    NoNewPrivileges=: the same kernel state systemd gives the service."""
    unit = unit_settings()
    user = unit["User"][-1]
    ambient = ",".join("+" + c.lower().removeprefix("cap_") for c in unit["AmbientCapabilities"][-1].split())
    bounding = ",".join("+" + c.lower().removeprefix("cap_") for c in unit["CapabilityBoundingSet"][-1].split())
    cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", f"--bounding-set=-all,{bounding}"]
    cmd += [f"--inh-caps=-all,{ambient}", f"--ambient-caps=-all,{ambient}"] if caps else ["--inh-caps=-all"]
    if unit["NoNewPrivileges"][-1] == "yes":
        cmd.append("--no-new-privs")
    return [*cmd, *args]


def dpkg_status() -> str:
    """ii installed, rc config files left, "" not installed (or purged)."""
    result = run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG, check=False)
    status = result.stdout.strip() if result.returncode == 0 else ""
    return "" if status in ("un", "pn") else status


def apt_get(*args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", *args, env=env, timeout=600)


def leftovers(owner: Optional[pwd.struct_passwd] = None) -> set[str]:
    """Every path on the watched trees whose name mentions netprobe, or that belongs to `owner`'s
    uid or gid (other tests' network namespaces and this test's own lock aside)."""
    match = ["-iname", "*netprobe*"]
    if owner is not None:
        match = ["(", *match, "-o", "-uid", str(owner.pw_uid), "-o", "-gid", str(owner.pw_gid), ")"]
    prune = ["-path", "/run/netns", "-prune", "-o"]
    result = run("find", *WATCHED, "-xdev", *prune, *match, "-print", check=False)
    return {line for line in result.stdout.splitlines() if line and not line.startswith(LOCK)}


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not is_debian():
        pytest.skip("builds a .deb: needs Debian's dpkg-deb")
    out = tmp_path_factory.mktemp("deb")
    result = run("bash", str(ROOT / "packaging" / "build-deb"), "-o", str(out))
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def install_lock() -> Iterator[None]:
    """One install test at a time on this machine (dpkg would refuse a second anyway)."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def baseline(install_lock: None) -> Iterator[set[str]]:
    """What mentions netprobe before the package is installed (the purge test compares). The
    package never outlives this module: /etc/netprobe/agent.toml would become other tests'
    default config."""
    if dpkg_status():
        apt_get("purge", PKG)
    assert pwd_entry() is None, "a netprobe user exists without the package: cannot prove purge removes it"
    yield leftovers()
    if dpkg_status():
        apt_get("purge", PKG)


@pytest.fixture
def installed(deb: Path, baseline: set[str]) -> Path:
    """The package installed with apt-get, as the README tells a technician on a slow link:
    Debian's dependencies from the archive, scapy and speedtest-cli named, no Recommends chain."""
    if dpkg_status() != "ii":
        # python3-seccomp is the test's own: tests/unit_sandbox.py rebuilds the unit's filter with it.
        apt_get("install", "--no-install-recommends", str(deb), "python3-scapy", "speedtest-cli", "python3-seccomp")
    return deb


def pwd_entry() -> Optional[pwd.struct_passwd]:
    try:
        return pwd.getpwnam("netprobe")
    except KeyError:
        return None


def group_exists(name: str) -> bool:
    return run("getent", "group", name, check=False).returncode == 0


# --- the .deb itself (Debian, root not needed) ------------------------------------------------


@requires_debian
def test_deb_is_named_for_the_agent_version_and_declares_debian_dependencies(deb: Path) -> None:
    assert deb.name == f"netprobe-agent_{__version__}_all.deb"
    fields = {f: run("dpkg-deb", "-f", str(deb), f).stdout.strip() for f in ("Version", "Architecture", "Depends")}
    assert fields["Version"] == __version__
    assert fields["Architecture"] == "all"
    depends = [d.strip() for d in fields["Depends"].split(",")]
    for package, version in DEBIAN_12.items():
        if package != "python3-scapy":
            assert f"{package} (>= {version})" in depends
    assert "python3:any (>= 3.11) | python3-tomli (>= 2.0.1)" in depends
    recommends = run("dpkg-deb", "-f", str(deb), "Recommends").stdout
    assert "python3-scapy" in recommends and "speedtest-cli" in recommends


@requires_debian
def test_deb_ships_agent_command_unit_and_a_private_conffile_without_node_id(deb: Path, tmp_path: Path) -> None:
    listing = run("dpkg-deb", "-c", str(deb)).stdout
    modes = {line.split()[-1].lstrip("."): line.split()[0] for line in listing.splitlines()}
    assert "/usr/lib/python3/dist-packages/agent/cli.py" in modes
    assert not [p for p in modes if "__pycache__" in p or p.endswith(".pyc")], "bytecode belongs to postinst"
    assert modes["/usr/bin/netprobe"] == "-rwxr-xr-x"
    assert "/lib/systemd/system/netprobe-agent.service" in modes
    assert modes["/etc/netprobe/agent.toml"] == "-rw-r-----"
    run("dpkg-deb", "-e", str(deb), str(tmp_path / "control"))
    assert (tmp_path / "control" / "conffiles").read_text().split() == ["/etc/netprobe/agent.toml"]
    run("dpkg-deb", "-x", str(deb), str(tmp_path / "root"))
    conf = tomllib.loads((tmp_path / "root" / "etc/netprobe/agent.toml").read_text())
    assert conf["node"]["id"] == "", "node.id must be left for the technician"
    assert (conf["site"]["kecamatan"], conf["site"]["desa"]) == ("", "")
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    assert conf["targets"] == example["targets"] and conf["mqtt"] == example["mqtt"]


@requires_debian
@pytest.mark.skipif(shutil.which("lintian") is None, reason="needs lintian (apt-get install lintian)")
def test_lintian_finds_no_errors_and_no_warnings(deb: Path) -> None:
    # A deliberate exception is an override in the package, explained in the README.
    result = run("lintian", "--pedantic", "--info", str(deb), check=False)
    tags = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


# --- the unit (systemd-analyze works offline, no running systemd needed) ----------------------


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


# --- installed with apt-get, run on Debian's python3 (Debian + root) --------------------------


@requires_install
def test_plain_apt_install_with_recommends_resolves_on_debian_12(deb: Path, baseline: set[str]) -> None:
    # The README's step 2 as written; simulated (-s), because scapy's own Recommends would bring
    # some 100 packages (ipython3, matplotlib, scipy) that the tests below do not need.
    if dpkg_status():
        apt_get("purge", PKG)
    result = run("apt-get", "install", "-s", "-o", "APT::Install-Recommends=true", str(deb), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^Inst netprobe-agent \(?{re.escape(__version__)}", result.stdout, re.M), result.stdout


@requires_install
def test_install_pulls_debian_12_library_versions_for_system_python(installed: Path) -> None:
    versions = run("dpkg-query", "-W", "-f=${Package} ${Version}\\n", *DEBIAN_12).stdout
    got = dict(line.split() for line in versions.splitlines())
    for package, upstream in DEBIAN_12.items():
        assert got[package].startswith(upstream), f"{package} {got[package]}: not Debian 12's {upstream}"
    code = (
        "import agent, paho.mqtt, icmplib, dns.version, psutil, scapy, json;"
        "print(json.dumps([agent.__file__, paho.mqtt.__version__, icmplib.__version__,"
        " dns.version.version, psutil.__version__, scapy.VERSION]))"
    )
    out = run("/usr/bin/python3", "-c", code, env=dict(SYSTEM_ENV), cwd="/").stdout
    agent_file, *module_versions = json.loads(out)
    assert agent_file == str(DIST_AGENT / "__init__.py")
    assert [v.split("+")[0] for v in module_versions] == list(DEBIAN_12.values())


@requires_install
def test_netprobe_version_runs_on_system_python(installed: Path) -> None:
    result = system_netprobe("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"netprobe {__version__}"
    assert run("head", "-1", "/usr/bin/netprobe").stdout.strip() == "#!/usr/bin/python3"


@requires_install
def test_postinst_makes_system_account_private_conffile_and_state_dir(installed: Path) -> None:
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
    assert (DIST_AGENT / "__pycache__").is_dir(), "postinst byte-compiles with py3compile"


@requires_install
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_installed_unit_verifies_cleanly(installed: Path) -> None:
    # verify also checks that ExecStart= exists and Documentation=man:netprobe(1) resolves.
    result = run("systemd-analyze", "verify", "/lib/systemd/system/netprobe-agent.service", check=False)
    assert (result.returncode, result.stderr.strip()) == (0, ""), result.stderr


@requires_install
def test_check_config_accepts_the_conffile_once_a_node_id_is_set(installed: Path) -> None:
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
    installed: Path, tmp_path: Path, dns_server: Any, tcp_listener: Any, http_server: Any
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
def test_icmp_works_as_netprobe_with_only_the_units_ambient_cap_net_raw(installed: Path) -> None:
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


CLOCK_PROBE = """
import ctypes, json
from agent import clock
libc = ctypes.CDLL(None, use_errno=True)
state = libc.adjtimex(ctypes.create_string_buffer(512))
hostname = libc.sethostname(b"x", 1)
print(json.dumps([state, hostname, ctypes.get_errno(), clock.clock_synced()]))
"""


@requires_install
def test_agent_reads_the_clock_state_behind_the_units_syscall_filter(installed: Path) -> None:
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


@pytest.fixture
def two_hop_path() -> Iterator[str]:
    """Namespaces node -- router -- server (198.51.100.0/24, 203.0.113.0/24); yields the node's."""
    prefix = f"np7-{os.getpid()}"
    node, router, server = (f"{prefix}-{n}" for n in ("node", "rtr", "srv"))
    steps = [
        *(f"ip netns add {ns}" for ns in (node, router, server)),
        f"ip link add {prefix}a type veth peer name {prefix}b",
        f"ip link add {prefix}c type veth peer name {prefix}d",
        f"ip link set {prefix}a netns {node}",
        f"ip link set {prefix}b netns {router}",
        f"ip link set {prefix}c netns {router}",
        f"ip link set {prefix}d netns {server}",
        f"ip -n {node} addr add 198.51.100.2/24 dev {prefix}a",
        f"ip -n {router} addr add 198.51.100.1/24 dev {prefix}b",
        f"ip -n {router} addr add 203.0.113.1/24 dev {prefix}c",
        f"ip -n {server} addr add 203.0.113.2/24 dev {prefix}d",
        *(f"ip -n {ns} link set {dev} up" for ns, dev in ((node, f"{prefix}a"), (router, f"{prefix}b"))),
        *(f"ip -n {ns} link set {dev} up" for ns, dev in ((router, f"{prefix}c"), (server, f"{prefix}d"))),
        *(f"ip -n {ns} link set lo up" for ns in (node, router, server)),
        f"ip netns exec {router} sysctl -qw net.ipv4.ip_forward=1",
        f"ip -n {node} route add default via 198.51.100.1",
        f"ip -n {server} route add default via 203.0.113.1",
    ]
    try:
        for step in steps:
            run(*step.split())
        yield node
    finally:
        for ns in (node, router, server):
            run("ip", "netns", "del", ns, check=False)


@requires_install
@pytest.mark.skipif(not shutil.which("ip"), reason="needs iproute2 (ip)")
def test_path_probe_on_debians_scapy_traces_two_hops_behind_the_units_sandbox(
    installed: Path, two_hop_path: str
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


def notify_socket() -> tuple[socket.socket, str]:
    """A stand-in for systemd's $NOTIFY_SOCKET that the netprobe user may write to."""
    where = tempfile.mkdtemp(prefix="netprobe-test-notify-", dir="/run")  # /tmp is private to the unit
    os.chmod(where, 0o755)
    path = os.path.join(where, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o777)
    sock.settimeout(0.1)
    return sock, path


def notifications(sock: socket.socket) -> list[str]:
    got: list[str] = []
    while True:
        try:
            got += sock.recv(4096).decode().splitlines()
        except socket.timeout:
            return got


RELOADED_TARGET = """
[[targets]]
kind = "icmp"
target = "127.0.0.2"
name = "added-on-reload"
interval = 1
timeout = 0.5
count = 1
"""


def readings_from(subscriber: Any, node: str) -> list[dict[str, Any]]:
    found = []
    for _topic, payload, _retain in subscriber.snapshot():
        try:
            message = json.loads(payload)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("node") == node and "measurement" in message:
            found.append(message)
    return found


@requires_install
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)")
def test_run_as_the_service_publishes_readings_to_a_local_mosquitto(
    installed: Path, tmp_path: Path, broker: Any, subscriber: Any, tcp_listener: Any
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
def test_remove_keeps_config_and_purge_leaves_no_file_user_or_group(installed: Path, baseline: set[str]) -> None:
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
    assert not DIST_AGENT.exists(), "prerm's py3clean must take the bytecode too"
    assert not Path("/lib/systemd/system/netprobe-agent.service").exists()
    assert CONF.exists() and spool.exists() and pwd_entry() is not None, "remove keeps config, spool, account"

    apt_get("purge", PKG)
    assert dpkg_status() == ""
    assert pwd_entry() is None
    assert not group_exists("netprobe")
    assert leftovers(owner=user) - baseline == set(), "files named for netprobe or of its account remain"
