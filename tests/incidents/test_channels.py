"""Each channel against a local stand-in: the signed webhook, the Telegram Bot API, WhatsApp, SMTP with STARTTLS."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.collector.incidents.channels import SIGNATURE_HEADER, Channels, DeliveryError, sign
from agent.collector.incidents.settings import (
    EmailSettings,
    NotifySettings,
    TelegramSettings,
    WebhookSettings,
    WhatsappSettings,
)
from agent.collector.incidents.store import Queued
from tests.helpers import free_port
from tests.incidents.receivers import HttpRecorder, SmtpRecorder
from tests.testbed import pki

TEXT = 'Tidak ada internet di desa "Balai Agung"\nPenyebab: listrik padam'


def queued(channel: str, recipient: str = "", key: str = "k" * 32) -> Queued:
    payload = {"event": "open", "key": key, "incident": {"id": "n1/dark/1", "cause": "power"}}
    return Queued(key, "n1/dark/1", "open", channel, recipient, "id", "[netprobe] GELAP: Balai Agung", TEXT,
                  payload, 1, 0.0, 0.0, 0)  # fmt: skip


@pytest.fixture
def http() -> Iterator[HttpRecorder]:
    r = HttpRecorder()
    yield r
    r.close()


def test_the_webhook_posts_json_signed_with_hmac_sha256_and_an_idempotency_key(
    http: HttpRecorder, tmp_path: Path
) -> None:
    secret = tmp_path / "hmac"
    secret.write_text("s3cret-key\n")
    Channels(NotifySettings(webhook=WebhookSettings(url=f"{http.url}/hook", secret_file=str(secret)))).send(
        queued("webhook")
    )
    (got,) = http.got
    body = got["body"].encode()
    assert got["headers"][SIGNATURE_HEADER.lower()] == sign("s3cret-key", body)
    assert got["headers"]["idempotency-key"] == "k" * 32
    assert json.loads(body)["incident"]["cause"] == "power"


def test_the_webhook_without_a_secret_is_not_signed(http: HttpRecorder) -> None:
    Channels(NotifySettings(webhook=WebhookSettings(url=http.url))).send(queued("webhook"))
    assert SIGNATURE_HEADER.lower() not in http.got[0]["headers"]


def test_telegram_calls_sendmessage_with_the_token_from_the_environment(
    http: HttpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_TOKEN_TEST", "123:ABC")
    notify = NotifySettings(telegram=TelegramSettings(base_url=http.url, token_env="TG_TOKEN_TEST"))
    Channels(notify).send(queued("telegram", "-1001234"))
    (got,) = http.got
    assert got["path"] == "/bot123:ABC/sendMessage"
    sent = json.loads(got["body"])
    assert sent["chat_id"] == "-1001234" and sent["text"].startswith("[netprobe] GELAP") and TEXT in sent["text"]


def test_an_error_never_shows_the_telegram_token(http: HttpRecorder, tmp_path: Path) -> None:
    token = tmp_path / "tg"
    token.write_text("999:SECRET-TOKEN\n")
    http.fail["/bot"] = 401
    notify = NotifySettings(telegram=TelegramSettings(base_url=http.url, token_file=str(token)))
    with pytest.raises(DeliveryError) as caught:
        Channels(notify).send(queued("telegram", "42"))
    assert caught.value.permanent and "SECRET" not in str(caught.value)


def test_whatsapp_fills_the_template_with_escaped_text_and_sends_the_token_header(
    http: HttpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WA_TOKEN_TEST", "wa-token")
    notify = NotifySettings(
        whatsapp=WhatsappSettings(
            url=f"{http.url}/send", body='{"phone": "{to}", "message": "{text}", "type": "text"}',
            token_env="WA_TOKEN_TEST",
        )
    )  # fmt: skip
    Channels(notify).send(queued("whatsapp", "+6281234567890"))
    (got,) = http.got
    sent = json.loads(got["body"])  # quotes and newlines in the text kept the JSON valid
    assert sent["phone"] == "+6281234567890" and TEXT in sent["message"] and sent["type"] == "text"
    assert got["headers"]["authorization"] == "Bearer wa-token"


@pytest.mark.parametrize(("status", "permanent"), [(503, False), (429, False), (400, True), (404, True)])
def test_http_answers_say_whether_a_retry_can_help(http: HttpRecorder, status: int, permanent: bool) -> None:
    http.fail["/"] = status
    with pytest.raises(DeliveryError) as caught:
        Channels(NotifySettings(webhook=WebhookSettings(url=http.url))).send(queued("webhook"))
    assert caught.value.permanent is permanent


def test_a_receiver_that_is_down_is_a_temporary_failure() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(DeliveryError) as caught:
        Channels(NotifySettings(webhook=WebhookSettings(url=url), timeout_s=2.0)).send(queued("webhook"))
    assert not caught.value.permanent


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpRecorder, str]]:
    paths = pki.make_pki("127.0.0.1")
    server = SmtpRecorder("127.0.0.1", paths["cert"], paths["key"])
    yield server, paths["ca"]
    server.close()


def test_email_goes_over_starttls_verified_with_login_and_the_key_as_message_id(
    smtp: tuple[SmtpRecorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = smtp
    monkeypatch.setenv("SMTP_PW_TEST", "pw")
    notify = NotifySettings(
        email=EmailSettings(
            host="127.0.0.1", port=server.port, ca_file=ca, username="teknisi", password_env="SMTP_PW_TEST",
            from_addr="netprobe@muba.go.id",
        )
    )  # fmt: skip
    Channels(notify).send(queued("email", "teknisi@muba.go.id", key="abc123"))
    (got,) = server.got
    assert got["tls"] and got["user"] == "teknisi" and got["rcpt"] == ["teknisi@muba.go.id"]
    msg = email.message_from_string(got["data"], policy=email.policy.default)
    assert msg["Subject"] == "[netprobe] GELAP: Balai Agung" and msg["Message-ID"] == "<abc123@netprobe>"
    assert TEXT in msg.get_content()


def test_email_refuses_a_server_whose_certificate_it_cannot_verify(smtp: tuple[SmtpRecorder, str]) -> None:
    server, _ = smtp
    notify = NotifySettings(email=EmailSettings(host="127.0.0.1", port=server.port), timeout_s=5.0)  # system CAs
    with pytest.raises(DeliveryError):
        Channels(notify).send(queued("email", "teknisi@muba.go.id"))
    assert server.got == []
