"""Email alerts: an event as a plain text and HTML multipart message (pure), sent through the
installation's SMTP server with the standard library's ``smtplib``."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape

from aethercrown.alerts.catalogue import Message
from aethercrown.clock import utcnow
from aethercrown.core.outbox import Attempt


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    starttls: bool
    username: str | None
    password: str | None
    sender: str
    timeout: float


def subject(message: Message) -> str:
    return f"[AetherCrown] [{message.severity.upper()}] {message.title} — {message.tenant}"[:250]


def text_body(message: Message) -> str:
    width = max((len(label) for label, _ in message.fields), default=0)
    lines = [message.summary, ""]
    lines += [f"{label + ':':<{width + 2}}{value}" for label, value in message.fields]
    lines += [
        "",
        f"Severity: {message.severity}",
        f"Event: {message.event_type} at {message.created}",
        f"Open in AetherCrown: {message.link}",
    ]
    return "\n".join(lines) + "\n"


def html_body(message: Message) -> str:
    rows = "".join(
        f'<tr><th scope="row" style="text-align:left;padding:2px 12px 2px 0">{escape(label)}'
        f"</th><td>{escape(value)}</td></tr>"
        for label, value in message.fields
    )
    return (
        '<!doctype html><html lang="en"><body style="font-family:sans-serif">'
        f'<h1 style="font-size:18px">{escape(message.title)}</h1>'
        f"<p>{escape(message.summary)}</p>"
        f"<table>{rows}</table>"
        f'<p style="color:#555">{escape(message.severity.upper())} · '
        f"{escape(message.tenant)} · {escape(message.event_type)} at {escape(message.created)}</p>"
        f'<p><a href="{escape(message.link, quote=True)}">Open in AetherCrown</a></p>'
        "</body></html>"
    )


def build(message: Message, sender: str, recipients: list[str]) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = subject(message)
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = format_datetime(utcnow())
    email["Message-ID"] = make_msgid(domain="aethercrown")
    email.set_content(text_body(message))
    email.add_alternative(html_body(message), subtype="html")
    return email


def send(server: SmtpServer, message: Message, recipients: list[str]) -> Attempt:
    """Send to ``recipients`` (call with no transaction open). A recipient the server refuses
    with a 4xx reply stays owed and is tried again later; one refused with a 5xx reply is given
    up on (retrying cannot help, and those who got it are never sent it twice)."""
    email = build(message, server.sender, recipients)
    try:
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout) as smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.username:
                smtp.login(server.username, server.password or "")
            refused = smtp.send_message(email, from_addr=server.sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    except smtplib.SMTPResponseException as exc:
        # A message the server rejects for good (5xx after DATA) will be rejected again;
        # anything else (the server busy, a login the operator can fix) is worth retrying.
        permanent = isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500
        return Attempt(
            delivered=False,
            status_code=exc.smtp_code,
            error=f"{exc.smtp_code} {_text(exc.smtp_error)}",
            final=permanent,
        )
    except (smtplib.SMTPException, OSError) as exc:
        return Attempt(delivered=False, error=f"{type(exc).__name__}: {exc}")
    if not refused:
        return Attempt(delivered=True, status_code=250, changes={"pending_recipients": []})
    later = sorted(r for r, (code, _) in refused.items() if code < 500)
    reasons = "; ".join(
        f"{r} refused: {code} {_text(answer)}" for r, (code, answer) in sorted(refused.items())
    )
    worst = max(code for code, _ in refused.values())
    return Attempt(
        delivered=False,
        status_code=worst,
        error=reasons,
        final=not later,
        changes={"pending_recipients": later},
    )


def _text(answer: bytes | str) -> str:
    return answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
