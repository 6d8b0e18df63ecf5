"""A small helper server for trying the service locally.

Serves the sample videos under ``/samples/`` (so an import has a URL to fetch)
and accepts webhooks on ``/webhooks``, printing each body and appending it to
``webhooks.jsonl`` in the data dir.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

CONTENT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime"}


def serve(samples: Path, webhook_log: Path, port: int) -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # The query is ignored, so one sample serves as many distinct videos.
            requested = urlsplit(self.path).path
            name = requested.removeprefix("/samples/")
            path = samples / name
            if not requested.startswith("/samples/") or "/" in name or not path.is_file():
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body = path.read_bytes()
            self.send_response(HTTPStatus.OK)
            content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path != "/webhooks":
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            record = {
                "headers": {
                    k.lower(): v
                    for k, v in self.headers.items()
                    if k.lower().startswith("webhook-")
                },
                "body": json.loads(body or b"null"),
            }
            with lock, webhook_log.open("a") as out:
                out.write(json.dumps(record) + "\n")
            print(f"webhook: {body.decode(errors='replace')}", flush=True)
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="demo-server", daemon=True).start()
    return server
