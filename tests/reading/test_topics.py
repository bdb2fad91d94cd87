"""Pure parts of publishing: slugs and topics (a contract with the collector), config checks, backoff."""

from __future__ import annotations

import random

import pytest

from agent.config import ConfigError, parse_config
from agent.publish.mqtt import Backoff
from agent.reading import topics


@pytest.mark.parametrize(
    "value,expected",
    [
        ("Balai Agung", "balai-agung"),
        ("Sungai Lilin", "sungai-lilin"),
        ("  Babat Toman ", "babat-toman"),
        ("Lais/Utara", "lais-utara"),
        ("Plakat Tinggi (II)", "plakat-tinggi-ii"),
        ("Desa  --  Baru_2", "desa-baru-2"),
        ("", "unknown"),
        ("+#", "unknown"),
    ],
)
def test_site_values_are_slugified_for_topics(value, expected):
    assert topics.slug(value) == expected


def test_default_topic_and_status_topic():
    site = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
    assert topics.topic(topics.DEFAULT_TOPIC, "muba-01", site, "icmp") == "netprobe/sekayu/balai-agung/muba-01/icmp"
    assert topics.status_topic(topics.DEFAULT_TOPIC, "muba-01", site) == "netprobe/sekayu/balai-agung/muba-01/status"
    custom = "np/{kabupaten}/{node}/{measurement}"
    assert topics.topic(custom, "n1", site, "host") == "np/musi-banyuasin/n1/host"


@pytest.mark.parametrize(
    "template,why",
    [
        ("netprobe/{node}", "must contain {measurement}"),
        ("netprobe/{village}/{measurement}", "unknown placeholder {village}"),
        ("netprobe/#/{measurement}", "wildcards"),
        ("/netprobe/{measurement}", "empty topic levels"),
        ("netprobe/{measurement", "not a valid template"),
    ],
)
def test_bad_topic_templates_are_config_errors(template, why):
    with pytest.raises(ConfigError, match="mqtt.topic") as exc:
        parse_config({"mqtt": {"topic": template}})
    assert why in str(exc.value)


def test_mqtt_settings_are_checked_together(tmp_path):
    with pytest.raises(ConfigError) as exc:
        parse_config({"mqtt": {"broker": "mqtt://b", "cert_file": str(tmp_path / "missing.pem"), "ca_file": __file__,
                               "reconnect_min": 10.0, "reconnect_max": 5.0}})  # fmt: skip
    text = str(exc.value)
    assert "mqtt.cert_file: cannot read" in text
    assert "mqtt.ca_file: is only used with an mqtts:// broker" in text
    assert "mqtt.key_file: cert_file and key_file go together" in text
    assert "mqtt.reconnect_max: must be at least reconnect_min" in text


def test_password_comes_from_the_file_first_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NETPROBE_MQTT_PASSWORD", "from-env")
    assert parse_config({"mqtt": {"broker": "mqtt://b"}}).mqtt.password() == "from-env"
    secret = tmp_path / "pw"
    secret.write_text("from-file\nsecond line ignored\n")
    assert parse_config({"mqtt": {"password_file": str(secret)}}).mqtt.password() == "from-file"
    assert "from-file" not in repr(parse_config({"mqtt": {"password_file": str(secret)}}))


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets():
    b = Backoff(1.0, 60.0, random.Random(3))
    delays = [b.next() for _ in range(12)]
    for i, d in enumerate(delays):
        ceiling = min(60.0, 2.0**i)
        assert ceiling / 2 <= d <= ceiling
    assert max(delays) <= 60.0 and delays[-1] >= 30.0
    assert len({round(d, 6) for d in delays[-5:]}) == 5  # jitter: a fleet does not retry in step
    b.reset()
    assert 0.5 <= b.next() <= 1.0
