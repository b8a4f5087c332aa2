"""A tiny local webhook receiver: stands in for Discord in the tests and the demo.

It records every JSON POST and answers like Discord (204), or with whatever status, headers
and body the test asks for, to reproduce Discord's failure modes for real over HTTP.
``GET /alerts`` lists what was received, so another process (the demo) can read it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    # Discord answers 200 with the message as JSON when asked to wait (discord-webhook does).
    status: int = 200
    body: bytes = b'{"id": "1", "type": 0}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.reply = Reply()
        # Answers to use first, one per request, before falling back to ``reply``.
        self.queue: list[Reply] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = {"raw": raw.decode(errors="replace")}
                with receiver._lock:
                    receiver.received.append(payload)
                    reply = receiver.queue.pop(0) if receiver.queue else receiver.reply
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.body:
                    self.wfile.write(reply.body)

            def do_GET(self) -> None:
                with receiver._lock:
                    body = json.dumps(receiver.received).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # keep test and demo output clean
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="webhook-receiver"
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhook"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def embeds(self) -> list[dict[str, Any]]:
        """Every embed received, flattened (Discord payloads carry a list of embeds)."""
        with self._lock:
            return [e for p in self.received if isinstance(p, dict) for e in p.get("embeds", [])]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
