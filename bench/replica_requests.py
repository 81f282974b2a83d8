"""How many object-storage requests Litestream makes for the site, per month.

OCI's Always Free Object Storage includes 50,000 API requests a month: this counts
the requests the replica really makes, with the toolkit's own litestream.yml, against
rclone's S3 server on loopback (its debug log names every request), for a database
that is idle or written every N seconds, after the first two minutes (start-up:
listing every level, the first snapshot) have passed.

    .venv/bin/python bench/replica_requests.py --minutes 10               # idle
    .venv/bin/python bench/replica_requests.py --minutes 10 --write-every 60

Results: bench/results/replica_requests.txt.
"""

import argparse
import collections
import datetime
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from replica_support import LITESTREAM, RCLONE, free_port, litestream_env  # noqa: E402
from test_replica import BASE, render_litestream  # noqa: E402

WARMUP = 120
REQUEST = re.compile(
    r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) DEBUG : serve s3: (LIST BUCKET|CREATE OBJECT|GET OBJECT|DELETE|HEAD)"
)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="how long to count, after the warm-up")
    parser.add_argument("--write-every", type=float, default=0, help="seconds between writes (0: idle)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="replica-requests-"))
    (work / "buckets" / "bkt").mkdir(parents=True)
    db = work / "data" / "milesahead.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE writes (n INTEGER, at REAL)")
    port = free_port()
    env = BASE | {
        "REPLICA_ENDPOINT": f"http://127.0.0.1:{port}",
        "REPLICA_BUCKET": "bkt",
        "REPLICA_PATH": "milesahead/db",
        "REPLICA_REGION": "us-east-1",
        "REPLICA_ACCESS_KEY_ID": "AKIABENCHMARK0000001",
        "REPLICA_SECRET_ACCESS_KEY": "bench-secret-key-0000000000000000",
    }
    config = work / "litestream.yml"
    config.write_text(render_litestream(env, db))
    log = work / "rclone.log"
    rclone = subprocess.Popen(
        [RCLONE, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--log-level", "DEBUG",
         "--auth-key", f"{env['REPLICA_ACCESS_KEY_ID']},{env['REPLICA_SECRET_ACCESS_KEY']}",
         str(work / "buckets")],
        stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    time.sleep(2)
    litestream = subprocess.Popen(
        [LITESTREAM, "replicate", "-no-expand-env", "-config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=litestream_env(),
    )  # fmt: skip
    start = time.time()
    counted_from = start + WARMUP
    end = counted_from + args.minutes * 60
    writes = 0
    try:
        while time.time() < end:
            if args.write_every:
                conn.execute("INSERT INTO writes VALUES (?, ?)", (writes, time.time()))
                writes += time.time() >= counted_from
                time.sleep(args.write_every)
            else:
                time.sleep(5)
    finally:
        litestream.terminate()
        litestream.wait(60)
        rclone.terminate()
        rclone.wait(10)

    kinds = collections.Counter()
    for line in log.read_text().splitlines():
        m = REQUEST.match(line)
        if not m:
            continue
        at = datetime.datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S").timestamp()
        if counted_from <= at < end:
            kinds[m.group(2)] += 1
    total = sum(kinds.values())
    per_month = total / (end - counted_from) * 30 * 24 * 3600
    load = open("/proc/loadavg").read().split()[0]
    print(f"litestream {subprocess.run([LITESTREAM, 'version'], capture_output=True, text=True).stdout.strip()},"
          f" toolkit litestream.yml (sync-interval 1s), {args.minutes:g} min counted after {WARMUP} s warm-up,"
          f" {'idle' if not args.write_every else f'one write every {args.write_every:g} s ({writes} writes)'},"
          f" load average {load}")  # fmt: skip
    for kind, n in sorted(kinds.items()):
        print(f"  {kind}: {n}")
    print(f"  total {total} requests -> {per_month:,.0f} per 30-day month")


if __name__ == "__main__":
    main()
