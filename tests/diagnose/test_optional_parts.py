"""The lean install leaves scapy and speedtest-cli out: what needs them says so, with the command to add them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agent import optional

# Runs the CLI with the named modules made unimportable, as on a node installed without them.
WITHOUT = "import sys\nfor m in {hidden!r}: sys.modules[m] = None\nfrom agent.cli import main\nraise SystemExit(main({argv!r}))"


def netprobe_without(hidden: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    code = WITHOUT.format(hidden=hidden, argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_missing_part_is_found_without_importing_it() -> None:
    code = "import sys; from agent import optional; optional.missing_parts(); print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr


def test_the_path_probe_without_scapy_names_the_lean_command() -> None:
    result = netprobe_without(["scapy"], "probe", "path", "127.0.0.1", "--json")
    reading = json.loads(result.stdout)
    assert result.returncode == 1 and not reading["ok"]
    assert reading["error"]["code"] == "not_installed"
    assert "sudo apt install --no-install-recommends python3-scapy" in reading["error"]["message"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("lang", "words"), [("en", "Not installed: scapy"), ("id", "Belum terpasang: scapy")])
def test_diagnose_lists_missing_parts_in_the_technicians_language(lang: str, words: str) -> None:
    cfg = "[[targets]]\nkind = 'tcp'\ntarget = '127.0.0.1:9'\n[linktype]\nenabled = false\n"
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(cfg)
        f.flush()
        text = netprobe_without(["scapy", "speedtest"], "diagnose", "-c", f.name, "--lang", lang)
        report = json.loads(netprobe_without(["scapy"], "diagnose", "-c", f.name, "--json").stdout)
    assert words in text.stdout and "--no-install-recommends python3-scapy" in text.stdout
    assert "--no-install-recommends speedtest-cli" in text.stdout
    assert [p["module"] for p in report["missing_parts"]] == ["scapy"]


def test_nothing_is_listed_where_every_part_is_installed() -> None:
    if optional.missing_parts():
        pytest.skip(f"this machine lacks {[p.module for p in optional.missing_parts()]}")
    assert optional.missing_message(optional.SCAPY) is None
