"""A real SMTP server on localhost (aiosmtpd) that keeps the messages it receives."""

from __future__ import annotations

import email
import socket
from email.message import Message

from aiosmtpd.controller import Controller


class _Collect:
    def __init__(self, inbox: list[Message], recipients: list[str]) -> None:
        self.inbox = inbox
        self.recipients = recipients

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.inbox.append(email.message_from_bytes(envelope.content))
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


class SmtpSink:
    """`with SmtpSink() as smtp:` then SMTP_URL=smtp.url; received messages land in `smtp.inbox`."""

    def __init__(self) -> None:
        self.inbox: list[Message] = []
        # The envelope's RCPT TO addresses: the mailboxes a real server would deliver to.
        self.recipients: list[str] = []
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._controller = Controller(_Collect(self.inbox, self.recipients), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
