"""`netprobe collect` and `netprobe fleet` on bad input: one clear line, the right exit code, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.collector import ROOT


def netprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_a_bad_collector_config_lists_every_problem_and_exits_78(tmp_path: Path) -> None:
    conf = tmp_path / "collector.toml"
    conf.write_text('[broker]\nurl = "http://x"\nshare_grup = "a"\n[store]\nretention_days = -1\n')
    out = netprobe("collect", "-c", str(conf))
    assert out.returncode == 78
    assert "broker.url: must start with mqtt:// or mqtts://" in out.stderr
    assert "broker.share_grup: unknown key; did you mean 'share_group'?" in out.stderr
    assert "store.retention_days: must be at least 0" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    conf = tmp_path / "collector.toml"
    conf.write_text(f'[broker]\npassword_file = "{tmp_path}/missing"\n')
    out = netprobe("collect", "-c", str(conf))
    assert out.returncode == 78 and "broker.password_file: cannot read" in out.stderr


def test_fleet_without_a_database_says_so_in_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "collector.toml"
    conf.write_text(f'[store]\npath = "{tmp_path}/none.db"\n')
    out = netprobe("fleet", "-c", str(conf))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"netprobe: cannot read the collector's database: no collector database at {tmp_path}/none.db"]


def test_the_packaged_collector_example_is_a_valid_config() -> None:
    from agent.collector.settings import load_collector_config

    cfg = load_collector_config(str(ROOT / "packaging" / "mosquitto" / "collector.toml"))
    assert cfg.broker.url.startswith("mqtts://") and cfg.broker.share_group == ""  # plain: Mosquitto 2.0 keeps it across a restart
    assert cfg.broker.client_id == cfg.broker.username == "collector-1"  # use_username_as_clientid
