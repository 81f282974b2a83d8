"""Reader throughput: our pages on waitress vs a bare Bottle handler serving the same bytes.

Both servers run side by side in one run, measured with wrk (apt-get install wrk), so the
ratio means something on a noisy machine even when absolute numbers do not. Also prints
the resident memory of the app process after the load.

    .venv/bin/python bench/bench_pages.py [--seconds 6] [--connections 32]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import store  # noqa: E402

BARE_APP = """
import sys, bottle, waitress
body = open(sys.argv[1], 'rb').read()
app = bottle.Bottle()
app.route('/<path:path>', 'GET', lambda path: body)
waitress.serve(app, host='127.0.0.1', port=int(sys.argv[2]), threads=8, _quiet=True)
"""


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url):
    for _ in range(200):
        try:
            return requests.get(url, timeout=1)
        except requests.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(url)


def wrk(url, seconds, connections):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.db")
        conn = store.connect(db)
        store.migrate(conn)
        store.seed_cards(conn, store.load_seed_cards())
        for i in range(20):
            store.insert_article(
                conn, title=f"Bench story {i}", status="approved", type="deal" if i % 3 else "summary", tldr="x" * 200
            )
        conn.close()
        with open(os.path.join(tmp, "config.yaml"), "w") as f:
            f.write(f"database:\n  path: {db}\n")

        app_port, bare_port = free_port(), free_port()
        app = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "app.py"), "--config", f.name, "serve", "--port", str(app_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # waitress warns of queue depth under load
        )
        try:
            paths = ["/", "/cards", "/cards/amex-platinum"]
            bodies = {}
            for path in paths:
                bodies[path] = wait(f"http://127.0.0.1:{app_port}{path}").content
            print(f"# {' '.join(sys.argv)}  (wrk -t2 -c{args.connections} -d{args.seconds}s)")
            print(f"{'page':24} {'bytes':>7} {'app req/s':>10} {'bare req/s':>11} {'app/bare':>9}")
            for path in paths:
                body_file = os.path.join(tmp, "body.html")
                with open(body_file, "wb") as f:
                    f.write(bodies[path])
                bare = subprocess.Popen(
                    [sys.executable, "-c", BARE_APP, body_file, str(bare_port)], stderr=subprocess.DEVNULL
                )
                try:
                    wait(f"http://127.0.0.1:{bare_port}/x")
                    ours = wrk(f"http://127.0.0.1:{app_port}{path}", args.seconds, args.connections)
                    theirs = wrk(f"http://127.0.0.1:{bare_port}/x", args.seconds, args.connections)
                finally:
                    bare.terminate()
                    bare.wait()
                print(f"{path:24} {len(bodies[path]):>7} {ours:>10.0f} {theirs:>11.0f} {ours / theirs:>9.2f}")
            print(f"app RSS after load: {rss_mb(app.pid):.1f} MB")
        finally:
            app.terminate()
            app.wait()


if __name__ == "__main__":
    main()
