"""The importing system for the Docker test tier, run in a container on the compose network.

``GET /samples/<name>`` serves a file of the directory given as the only argument (the
video host the ingester downloads from); ``POST /webhooks`` records the request (the
webhook receiver); ``GET /webhooks`` answers what it recorded, as JSON, to the test on
the host. Standard library only: it runs in the service image.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT = 8080
CONTENT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime"}
MAX_WEBHOOK_BYTES = 1 << 20

samples = Path(sys.argv[1])
received: list[dict[str, object]] = []
received_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/webhooks":
            with received_lock:
                self._answer(200, json.dumps(received).encode(), "application/json")
            return
        name = self.path.removeprefix("/samples/")
        path = samples / name
        if name == self.path or "/" in name or not path.is_file():
            self._answer(404, b"not found", "text/plain")
        else:
            content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
            self._answer(200, path.read_bytes(), content_type)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/webhooks" or length > MAX_WEBHOOK_BYTES:
            self._answer(404, b"not found", "text/plain")
            return
        body = self.rfile.read(length)
        with received_lock:
            received.append(
                {"headers": dict(self.headers), "body": base64.b64encode(body).decode("ascii")}
            )
        self._answer(204, b"", "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"origin: {format % args}\n")


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
