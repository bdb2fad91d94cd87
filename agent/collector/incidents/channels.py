"""Where messages go: a signed JSON webhook, the Telegram Bot API, e-mail over SMTP, a WhatsApp gateway.

The standard library is enough (urllib, smtplib, hmac), so the collector needs no new
package. Each send either returns or raises `DeliveryError`, permanent when retrying
cannot help (a 4xx answer, a refused recipient) so the outbox stops trying. Secrets
(bot token, SMTP password, HMAC key, gateway token) come from a file or the environment
and never appear in a log line or an error: the Telegram token is part of the URL, so
errors name the setting, never the address.
"""

from __future__ import annotations

import email.message
import email.utils
import hashlib
import hmac
import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any, Optional

from agent import __version__
from agent.collector.incidents.settings import NotifySettings
from agent.collector.incidents.store import Queued
from agent.net.secrets import read_secret_file

RETRYABLE_HTTP = (408, 425, 429)
SIGNATURE_HEADER = "X-Netprobe-Signature"
KEY_HEADER = "Idempotency-Key"


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def secret(path: str, env: str, what: str) -> str:
    """A secret from its file (first line) or environment variable; "" when neither is set."""
    if path:
        try:
            return read_secret_file(path)
        except OSError as exc:
            raise DeliveryError(f"cannot read {what} file: {exc.strerror}") from None
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise DeliveryError(f"{what}: environment variable {env} is not set")
        return value
    return ""


def sign(key: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of the exact body bytes, hex."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def fill(template: str, to: str, text: str) -> str:
    """The WhatsApp body template with {to} and {text} JSON-escaped, so any message stays valid JSON."""

    def esc(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)[1:-1]

    return template.replace("{to}", esc(to)).replace("{text}", esc(text))


class Channels:
    def __init__(self, notify: NotifySettings) -> None:
        self.n = notify

    def send(self, q: Queued) -> None:
        if q.channel == "webhook":
            self.webhook(q)
        elif q.channel == "telegram":
            self.telegram(q)
        elif q.channel == "email":
            self.email(q)
        elif q.channel == "whatsapp":
            self.whatsapp(q)
        else:
            raise DeliveryError(f"no channel '{q.channel}'", permanent=True)

    # -- HTTP -------------------------------------------------------------------------------
    def _post(self, url: str, body: bytes, headers: dict[str, str], what: str, hide: str = "") -> bytes:
        request = urllib.request.Request(url, data=body, method="POST")
        request.add_header("Content-Type", "application/json; charset=utf-8")
        request.add_header("User-Agent", f"netprobe/{__version__}")
        for name, value in headers.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.n.timeout_s) as response:
                return bytes(response.read(65536))
        except urllib.error.HTTPError as exc:
            permanent = 400 <= exc.code < 500 and exc.code not in RETRYABLE_HTTP
            raise DeliveryError(_clean(f"{what}: HTTP {exc.code} {exc.reason}", hide), permanent) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, timeout, DNS, TLS
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(_clean(f"{what}: {reason}", hide)) from None

    def webhook(self, q: Queued) -> None:
        s = self.n.webhook
        body = json.dumps(q.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {KEY_HEADER: q.key, "X-Netprobe-Event": q.event}
        key = secret(s.secret_file, s.secret_env, "notify.webhook secret")
        if key:
            headers[SIGNATURE_HEADER] = sign(key, body)
        self._post(s.url, body, headers, "webhook")

    def telegram(self, q: Queued) -> None:
        s = self.n.telegram
        token = secret(s.token_file, s.token_env, "notify.telegram token")
        if not token:
            raise DeliveryError("notify.telegram: no token (token_file or token_env)", permanent=True)
        body = json.dumps(
            {"chat_id": q.recipient, "text": f"{q.subject}\n\n{q.body}", "disable_web_page_preview": True},
            ensure_ascii=False,
        ).encode()
        url = f"{s.base_url.rstrip('/')}/bot{token}/sendMessage"
        answer = self._post(url, body, {}, "telegram", hide=token)
        try:
            ok = bool(json.loads(answer).get("ok"))
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise DeliveryError("telegram: the Bot API did not answer ok")

    def whatsapp(self, q: Queued) -> None:
        s = self.n.whatsapp
        body = fill(s.body, q.recipient, f"{q.subject}\n\n{q.body}").encode()
        headers = {KEY_HEADER: q.key}
        token = secret(s.token_file, s.token_env, "notify.whatsapp token")
        if token:
            headers[s.token_header] = f"{s.token_prefix}{token}"
        self._post(s.url, body, headers, "whatsapp", hide=token)

    # -- SMTP -------------------------------------------------------------------------------
    def email(self, q: Queued) -> None:
        s = self.n.email
        msg = email.message.EmailMessage()
        msg["From"] = s.from_addr
        msg["To"] = q.recipient
        msg["Subject"] = q.subject
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = f"<{q.key}@netprobe>"  # the idempotency key: receivers can drop a repeat
        msg.set_content(q.body)
        password = secret(s.password_file, s.password_env, "notify.email password")
        try:
            with smtplib.SMTP(s.host, s.port, timeout=self.n.timeout_s) as smtp:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=s.ca_file or None))
                    smtp.ehlo()
                if s.username:
                    smtp.login(s.username, password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"email: recipient refused: {_smtp_reason(exc)}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"email: {exc.smtp_code} {_text(exc.smtp_error)}", exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError, socket.timeout) as exc:
            raise DeliveryError(f"email: {exc}") from None


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _smtp_reason(exc: smtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in exc.recipients.items())


def _clean(message: str, hide: Optional[str]) -> str:
    return message.replace(hide, "***") if hide else message
