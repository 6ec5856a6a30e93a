"""Local receivers for notification tests, on 127.0.0.1 only: an HTTP server that records
each POST (and can fail the first N) and a minimal SMTP server that records each message.

``aiosmtpd`` is not installed here, so the SMTP side is a small ``socketserver`` speaking
just what :mod:`smtplib` needs: greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
"""

from __future__ import annotations

import hashlib
import hmac
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def signed_by(self, secret: str) -> bool:
        """Does ``X-Classprobe-Signature`` match the HMAC of the body with ``secret``?"""
        mine = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(mine, self.headers.get("x-classprobe-signature", ""))


@dataclass
class HttpReceiver:
    """Answers ``fail_status`` to the first ``fail_first`` POSTs, then 204."""

    fail_first: int = 0
    fail_status: int = 503
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, n: int, timeout_s: float) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        return list(self.received)


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.received.append(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(receiver.received) <= receiver.fail_first
            self.send_response(receiver.fail_status if failing else 204)
            if failing:
                text = b"receiver is failing on purpose"
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            else:
                self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet

    return Handler


@contextmanager
def http_receiver(fail_first: int = 0, fail_status: int = 503) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(fail_first, fail_status)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage


@dataclass
class SmtpReceiver:
    host: str = "127.0.0.1"
    port: int = 0
    mails: list[Mail] = field(default_factory=list)


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost test SMTP")
        sender, recipients = "", list[str]()
        while raw := self.rfile.readline():
            command = raw.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 localhost")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                self.server.receiver.mails.append(
                    Mail(sender, tuple(recipients), self._message()))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply(f"502 {verb} not implemented")

    def _message(self) -> EmailMessage:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        parsed = message_from_bytes(b"".join(lines), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    receiver: SmtpReceiver


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
    server.receiver = SmtpReceiver(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
