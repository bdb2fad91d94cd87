"""The probe registry: kinds found without importing, each probe loaded when first asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent import probes


def test_every_module_is_the_probe_of_its_own_kind() -> None:
    found = probes.registry()
    assert list(found) == list(probes.kinds()) and len(found) >= 9
    assert all(probe.kind == kind for kind, probe in found.items())


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: dish, dns"):
        probes.get("smoke-signal")


def test_a_config_loads_the_probes_it_names_and_no_other(tmp_path) -> None:
    # A daemon holds its own probes' code for years: without a link target, never the link classifier.
    conf = tmp_path / "agent.toml"
    conf.write_text('[[targets]]\nkind = "icmp"\ntarget = "127.0.0.1"\n\n[[targets]]\nkind = "tcp"\ntarget = "127.0.0.1:1"\n')
    code = (
        "import sys; from agent.config import load_config\n"
        f"cfg = load_config({str(conf)!r})\n"
        "print(sorted({t.kind for t in cfg.targets}))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('agent.probes.', 'agent.linktype.'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    configured, loaded = (eval(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert "link" not in configured
    # [linktype]'s settings are the config's own section; the classifier's modules are the link probe's.
    expected = ["agent.linktype.settings", "agent.probes.base", *(f"agent.probes.{k}" for k in configured)]
    assert loaded == expected, loaded
