"""A steady, bounded HTTP load that records every answer: did a deploy show?

A few threads each send GETs at a fixed pace (never bursting to catch up), each on a
new connection, like separate readers. Every request is kept: when it started, how
long it took, the status or the error, whether Caddy answered from a file (its
file_server sends Last-Modified; the app never does) and whether the body was whole.

    with Load(port, ["/", "/cards"], threads=4, rate=24) as load:
        ...                      # deploy
        load.mark("deploy two")  # shown in the summary, to place the slow ones
    print(load.summary())
    assert load.failures() == []

Standard library only.
"""

import gzip
import http.client
import json
import socket
import statistics
import threading
import time
from dataclasses import dataclass


@dataclass
class Answer:
    path: str
    at: float  # seconds since the load started
    seconds: float
    status: int | None  # None: no HTTP answer at all
    error: str = ""
    from_file: bool = False

    @property
    def ok(self):
        return self.status == 200 and not self.error


def whole(path, content_type, body):
    """Why the body is not a complete document of its type, or "" when it is."""
    if not body:
        return "empty body"
    if "json" in content_type:
        try:
            json.loads(body)
        except ValueError:
            return "JSON does not parse"
    elif "html" in content_type and b"</html>" not in body[-200:]:
        return "HTML ends before </html>"
    elif "xml" in content_type and not body.rstrip().endswith(b">"):
        return "XML ends mid-element"
    return ""


class NamedHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port (a forwarded port) as to `name`: its SNI, its certificate."""

    def __init__(self, name, context, port, timeout=15.0):
        super().__init__("127.0.0.1", port, timeout=timeout, context=context)
        self.name = name

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.name)
        except BaseException:  # a failed handshake leaves the plain socket open
            sock.close()
            raise


class Load:
    """GETs over `paths` from `threads` threads at `rate` requests/s in total."""

    def __init__(self, port, paths, threads=4, rate=24.0, timeout=15.0, name="load", https=None):
        self.port = port
        self.https = https  # (server name, ssl context): HTTPS to that name on 127.0.0.1:port
        self.paths = list(paths)
        self.threads = threads
        self.interval = threads / rate  # each thread's pace
        self.timeout = timeout
        self.name = name
        self.answers = []
        self.marks = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []
        self.started = self.stopped = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.started = time.monotonic()
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), name=f"{self.name}-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self):
        """Stop sending, wait for the requests in flight; returns the answers."""
        if self.stopped is None:
            self._stop.set()
            for worker in self._workers:
                worker.join(self.timeout + 5)
            self.stopped = time.monotonic()
        return self.answers

    def mark(self, label):
        self.marks.append((time.monotonic() - self.started, label))

    def _run(self, n):
        # Threads start a fraction of an interval apart and walk the paths from
        # different places, so every path is asked for all through the run.
        next_at = self.started + n * self.interval / self.threads
        step = n * len(self.paths) // self.threads
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            answer = self._get(self.paths[step % len(self.paths)])
            with self._lock:
                self.answers.append(answer)
            step += 1
            next_at = max(next_at + self.interval, time.monotonic())

    def _get(self, path):
        began = time.monotonic()
        answer = Answer(path, began - self.started, 0.0, None)
        headers = {"Accept-Encoding": "gzip", "Connection": "close"}
        if self.https:
            conn = NamedHTTPS(*self.https, self.port, timeout=self.timeout)
            headers["Host"] = self.https[0]
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            answer.status = resp.status
            answer.from_file = resp.getheader("Last-Modified") is not None
            if resp.getheader("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if resp.status == 200:
                answer.error = whole(path, resp.getheader("Content-Type", ""), body)
        except (OSError, http.client.HTTPException, EOFError) as e:
            answer.error = f"{type(e).__name__}: {e}"
        finally:
            conn.close()
        answer.seconds = time.monotonic() - began
        return answer

    # --- what happened ---------------------------------------------------------

    def failures(self):
        """Every answer that was not a whole 200: errors, timeouts, other statuses."""
        return [a for a in self.answers if not a.ok]

    def slowest(self):
        return max(self.answers, key=lambda a: a.seconds)

    def summary(self):
        answers = self.answers
        if not answers:
            return f"{self.name}: no requests were made"
        elapsed = (self.stopped or time.monotonic()) - self.started
        times = sorted(a.seconds for a in answers)
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        slow = self.slowest()
        by_path = {}
        for a in answers:
            by_path[a.path] = by_path.get(a.path, 0) + 1
        statuses = {}
        for a in answers:
            key = str(a.status) if a.status else "no answer"
            statuses[key] = statuses.get(key, 0) + 1
        lines = [
            f"{self.name}: {len(answers)} requests in {elapsed:.0f} s ({len(answers) / elapsed:.1f}/s"
            f" from {self.threads} threads), {len(self.failures())} failed;"
            f" statuses {statuses}; {sum(a.from_file for a in answers)} served from files",
            f"  latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, slowest {slow.seconds * 1000:.0f} ms"
            f" ({slow.path} at {slow.at:.1f} s, status {slow.status})",
            "  per path: " + ", ".join(f"{path} {count}" for path, count in by_path.items()),
        ]
        lines += [f"  at {at:6.1f} s: {label}" for at, label in self.marks]
        lines.append("  slowest five: " + ", ".join(
            f"{a.seconds:.2f} s at {a.at:.1f} s ({a.path} {a.status or a.error})"
            for a in sorted(answers, key=lambda a: a.seconds, reverse=True)[:5]
        ))  # fmt: skip
        for a in self.failures()[:20]:
            lines.append(f"  FAILED at {a.at:.1f} s after {a.seconds:.1f} s: GET {a.path} -> {a.status} {a.error}")
        return "\n".join(lines)
