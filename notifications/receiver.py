"""A local webhook receiver standing in for Discord: ``ia-continu run`` prints what it gets.

It records every JSON POST and answers as Discord does (204). ``GET`` (any path) lists what
was received, so another process (``ia-continu demo``) can read the alerts. A development tool,
not a test double: the tests reproduce Discord's answers with pytest-httpserver instead.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[Any] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="webhook-receiver"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = {"raw": raw.decode(errors="replace")}
                with receiver._lock:
                    receiver.received.append(payload)
                self.send_response(204)
                self.end_headers()

            def do_GET(self) -> None:
                with receiver._lock:
                    body = json.dumps(receiver.received).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *_: Any) -> None:  # keep the output clean
                pass

        return Handler

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhook"

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

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
