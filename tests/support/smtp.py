"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) that keeps what it received."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


@dataclass
class Received:
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[union-attr]

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""  # type: ignore[union-attr]


@dataclass
class SmtpSink:
    """What arrived, in order; ``on_message`` runs after each message was accepted."""

    host: str
    port: int
    messages: list[Received] = field(default_factory=list)
    on_message: Callable[[Received], None] | None = None
    # Runs when a client says QUIT, before the server answers it.
    on_quit: Callable[[], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        received = Received(
            envelope_from=envelope.mail_from,
            envelope_to=list(envelope.rcpt_tos),
            message=message,  # type: ignore[arg-type]
        )
        with self._arrived:
            self.messages.append(received)
            self._arrived.notify_all()
        if self.on_message is not None:
            self.on_message(received)
        return "250 Message accepted for delivery"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        """Addresses at ``refused.invalid`` are refused for good (550), like a mailbox that
        does not exist."""
        if address.endswith("@refused.invalid"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if self.on_quit is not None:
            self.on_quit()
        return "221 Bye"

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if address in m.envelope_to]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def settings(self) -> dict[str, Any]:
        """The ``BAROMETRE_SMTP_*`` settings that point at this server."""
        return {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": "none",
            "smtp_sender": "Baromètre <barometre@test.invalid>",
        }


@contextmanager
def smtp_server() -> Iterator[SmtpSink]:
    """Start aiosmtpd on a free loopback port for the block."""
    port = free_port()
    sink = SmtpSink(host="127.0.0.1", port=port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
