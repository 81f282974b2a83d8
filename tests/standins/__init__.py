"""Stand-ins for the outside internet: real HTTP servers on 127.0.0.1.

Each speaks one service's documented request and response shapes (and its
failures) so the pipeline's real clients run against them unchanged; only the
base URL in config differs. Every server records the requests it saw.
"""

import http.server
import json
import sys
import threading
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = {
            "method": method,
            "path": parsed.path,
            "query": {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()},
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        with self.server.standin.lock:
            self.server.standin.requests.append(request)
        try:
            self.server.standin.handle(self, request)
        except ConnectionError:
            pass  # the client gave up (a timeout test): nothing to answer

    def reply(self, status=200, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that hangs up early (a timeout or size-cap test) is expected, not an error
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Standin:
    """Base: a ThreadingHTTPServer on a free loopback port, run in a daemon thread."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.standin = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        if not self.thread.is_alive():
            return
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def handle(self, handler, request):
        handler.reply(404, {"error": "not found"})


def use_llm(config, standin, **overrides):
    """Point config's llm section at a stand-in, with test-sized timeouts and backoff."""
    config["llm"].update(
        base_url=standin.base_url,
        api_key=standin.api_key or "",
        timeout_seconds=2,
        backoff_seconds=0.01,
        max_wait_seconds=5.0,
        max_retries=3,
    )
    config["llm"]["models"] = {
        "generator": "test/generator",
        "critic": "test/critic",
        "image_filter": "test/image-filter",
        "vision": "test/vision",
    }
    config["llm"].update(overrides)
    return config
