#!/usr/bin/env python3
"""milesahead's Litestream replica: where it stands, and whether it restores.

    replica.py status                       position in the bucket, lag, last check
    replica.py verify [--max-lag-minutes N] restore the replica's latest copy to a
                                            temp file, integrity_check, row counts
                                            beside the live database's; exit 1 when
                                            broken or stale

`verify` (run nightly by backup.sh) writes its result to data/replica-verified.json,
which the app and monitoring can read: `verified_at` (unix seconds) is the last
time the replica was checked, `ok`, `last_ok_at` (the last time it passed),
`lag_seconds`, `replica_txid`, `rows`; the app's /metrics exports it as
milesahead_replica_last_success_timestamp_seconds and milesahead_replica_check_ok.
With no litestream.yml (replication off) both commands say so and exit 0.
Standard library only: it runs on the server with the system python3.
"""

import argparse
import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("MILESAHEAD_ROOT", "/opt/milesahead"))
DB = Path(os.environ.get("MILESAHEAD_DB", ROOT / "data" / "milesahead.db"))
CONFIG = Path(os.environ.get("LITESTREAM_CONFIG", ROOT / "litestream.yml"))
LITESTREAM = os.environ.get("LITESTREAM", str(ROOT / "bin" / "litestream"))
RESULT = DB.parent / "replica-verified.json"
# Seconds a WAL write may precede the bucket's newest file and still count as
# shipped: the sync interval (1 s), the listing's whole-second timestamps, and
# Litestream's own bookkeeping writes, shipped on its next sync.
SHIP_SLACK = 10


class ReplicaError(Exception):
    pass


def litestream(command, *args):
    """Run `litestream COMMAND ... ARGS` on the toolkit's config; its stdout."""
    argv = [LITESTREAM, command, "-no-expand-env", "-config", str(CONFIG), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise ReplicaError(f"litestream {command}: {(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(ts, now):
    seconds = max(0, int(now - ts))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def position():
    """(txid, unix time it reached the bucket) of the replica's newest transaction."""
    files = json.loads(litestream("ltx", "-json", "-level", "all", str(DB)) or "[]")
    if not files:
        return 0, None
    top = max(int(f["max_txid"], 16) for f in files)
    return top, min(parse_time(f["timestamp"]) for f in files if int(f["max_txid"], 16) == top)


def local_state(replica_txid):
    """(local txid, unix time of the oldest local transaction not in the bucket, or None)."""
    status = json.loads(litestream("status", "-json", str(DB)) or "[]")
    txid = status[0].get("local_txid", "-") if status else "-"
    local = int(txid, 16) if txid not in ("-", "") else 0
    pending = []
    for path in (DB.parent / f".{DB.name}-litestream" / "ltx" / "0").glob("*.ltx"):
        low = int(path.name.split("-")[0], 16)
        if low > replica_txid:
            pending.append(path.stat().st_mtime)
    return local, min(pending) if pending else None


def wal_written():
    """When the app last wrote a transaction: the WAL's mtime (checkpoints write the file)."""
    wal = Path(f"{DB}-wal")
    return wal.stat().st_mtime if wal.exists() else None


def lag(now):
    """Everything status and verify report about how far behind the replica is."""
    txid, at = position()
    local, oldest_pending = local_state(txid)
    written = wal_written()
    behind = []
    if oldest_pending is not None:  # shipped to Litestream's local log, not to the bucket
        behind.append(now - oldest_pending)
    # With Litestream down nothing reaches even its local log: a WAL written well
    # after the bucket's newest file holds transactions the bucket does not.
    if written is not None and (at is None or written - at > SHIP_SLACK):
        behind.append(now - (at or written))
    return {
        "replica_txid": f"{txid:016x}",
        "replica_written_at": at,
        "local_txid": f"{local:016x}",
        "transactions_behind": max(0, local - txid),
        "lag_seconds": round(max(behind), 1) if behind else 0.0,
    }


def service_state():
    result = subprocess.run(["systemctl", "is-active", "milesahead-litestream.service"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def cmd_status(args):
    if not CONFIG.exists():
        print("replica: off (no litestream.yml; set REPLICA_* and run setup)")
        return 0
    now = time.time()
    print(f"replica: service {service_state()}")
    try:
        state = lag(now)
    except ReplicaError as e:
        print(f"replica: cannot read the bucket: {e}")
        return 1
    at = state["replica_written_at"]
    where = f"txid {state['replica_txid']}" + (f" written {iso(at)} ({ago(at, now)})" if at else " (empty bucket)")
    print(f"replica: position {where}")
    if state["transactions_behind"] or state["lag_seconds"]:
        print(
            f"replica: lag {state['lag_seconds']:.0f} s, {state['transactions_behind']} transaction(s)"
            f" not yet in the bucket (local txid {state['local_txid']})"
        )
    else:
        print(f"replica: lag 0 s, caught up (local txid {state['local_txid']})")
    if RESULT.exists():
        last = json.loads(RESULT.read_text())
        verdict = "ok" if last.get("ok") else f"FAILED: {last.get('error')}"
        print(f"replica: last verified {iso(last['verified_at'])} ({ago(last['verified_at'], now)}): {verdict}")
    else:
        print("replica: never verified (bin/backup.sh daily does it)")
    return 0


def counts(conn):
    # Litestream's own _litestream_* tables are not the site's rows.
    query = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    tables = [r[0] for r in conn.execute(query) if not r[0].startswith("_litestream")]
    quoted = {t: '"' + t.replace('"', '""') + '"' for t in tables}
    return {t: conn.execute(f"SELECT count(*) FROM {quoted[t]}").fetchone()[0] for t in sorted(tables)}  # noqa: S608


def verify(max_lag_seconds):
    """Restore the latest copy beside the backups, check it; return the result dict."""
    now = time.time()
    result = {"verified_at": now, "ok": False, "error": None, "rows": {}}
    work = Path(tempfile.mkdtemp(prefix=".replica-check-", dir=ROOT / "backups"))
    try:
        result |= lag(now)
        copy = work / "copy.db"
        litestream("restore", "-o", str(copy), str(DB))
        conn = sqlite3.connect(copy)
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = counts(conn)
        conn.close()
        live = sqlite3.connect(f"file:{DB}?mode=ro", uri=True, timeout=30)
        live_rows = counts(live)
        live.close()
        result["rows"] = {t: {"replica": rows.get(t), "live": n} for t, n in live_rows.items()}
        missing = sorted(set(live_rows) - set(rows))
        if integrity != "ok":
            result["error"] = f"integrity_check of the restored copy: {integrity}"
        elif missing:
            result["error"] = f"the restored copy lacks table(s) {', '.join(missing)}"
        elif result["lag_seconds"] > max_lag_seconds:
            result["error"] = f"stale: the replica is {result['lag_seconds']:.0f} s behind (limit {max_lag_seconds} s)"
        else:
            result["ok"] = True
    except ReplicaError as e:
        result["error"] = str(e)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def cmd_verify(args):
    if not CONFIG.exists():
        print("replica: off (no litestream.yml): nothing to verify")
        return 0
    result = verify(args.max_lag_minutes * 60)
    try:
        previous = json.loads(RESULT.read_text()).get("last_ok_at")
    except (OSError, ValueError, AttributeError):
        previous = None
    result["last_ok_at"] = result["verified_at"] if result["ok"] else previous
    tmp = RESULT.with_name(f".{RESULT.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(RESULT)
    for table, n in result["rows"].items():
        print(f"replica: {table}: {n['replica']} rows in the restored copy, {n['live']} live")
    if not result["ok"]:
        print(f"replica: FAILED: {result['error']}", file=sys.stderr)
        return 1
    print(f"replica: ok: restored txid {result['replica_txid']}, integrity ok, lag {result['lag_seconds']:.0f} s")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="the replica's position and lag, and the last verification")
    v = sub.add_parser("verify", help="restore the latest copy to a temp file and check it")
    v.add_argument("--max-lag-minutes", type=float, default=float(os.environ.get("REPLICA_MAX_LAG_MINUTES", 15)))
    args = parser.parse_args(argv)
    return {"status": cmd_status, "verify": cmd_verify}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
