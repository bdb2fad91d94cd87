"""A broker password file means the same to the agent and to the collector (it used to be read two ways)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collector.settings import read_password
from agent.config import parse_config
from agent.schema import ConfigError


@pytest.mark.parametrize(
    "content", ["s3cret\n", "s3cret", "s3cret\r\n", "s3cret\n# rotated 2026-11 by the regency office\n"]
)
def test_agent_and_collector_read_the_same_password_from_the_same_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "password"
    path.write_text(content)
    agent_side = parse_config({"mqtt": {"broker": "mqtt://b", "password_file": str(path)}}).mqtt.password()
    assert agent_side == read_password(str(path)) == "s3cret"


def test_spaces_inside_a_password_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(" two words \n")
    assert read_password(str(path)) == " two words "


def test_an_unreadable_password_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="broker.password_file"):
        read_password(str(tmp_path / "missing"))
