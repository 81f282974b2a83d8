#!/usr/bin/env python3
"""Wait until milesahead's /healthz on loopback is ok and reports the expected release.

    healthgate.py --port 8080 --release ID [--timeout 60]
    healthgate.py --port 8080 --once          print /healthz and exit 0 if ok
    healthgate.py --port 8080 --once --brief  the same in a few words (for `status`)

Exit 0 when healthy, 1 with the last answer on stderr when not. Standard library only:
it runs on the server with the system python3.
"""

import argparse
import json
import sys
import time
import urllib.request


def probe(port):
    """(ok, release, text) for one request to /healthz."""
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode("utf-8", "replace")
    except OSError as e:
        # HTTPError is an OSError too: a 503 carries the app's reason in its body.
        body = getattr(e, "read", lambda: b"")()
        return False, None, f"{e} {body.decode('utf-8', 'replace')}".strip()
    try:
        data = json.loads(text)
    except ValueError:
        return False, None, f"not JSON: {text[:200]}"
    return data.get("status") == "ok", data.get("release"), text.strip()


def brief(ok, text):
    """'ok (schema 7, 41 cards)' or 'NOT OK: <reason>'."""
    try:
        data = json.loads(text)
    except ValueError:
        data = {}
    if ok:
        return f"ok (schema {data.get('schema_version')}, {data.get('cards')} cards)"
    return f"NOT OK: {data.get('reason') or text[:200]}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--release", help="the release id /healthz must report")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--once", action="store_true", help="probe once and print the answer")
    parser.add_argument("--brief", action="store_true", help="with --once: a few words, not the JSON")
    args = parser.parse_args(argv)

    if args.once:
        ok, _release, text = probe(args.port)
        print(brief(ok, text) if args.brief else text)
        return 0 if ok else 1

    deadline = time.monotonic() + args.timeout
    while True:
        ok, release, text = probe(args.port)
        if ok and (args.release is None or release == args.release):
            print(f"healthy: release {release}")
            return 0
        if time.monotonic() > deadline:
            want = f" with release {args.release}" if args.release else ""
            print(f"not healthy{want} after {args.timeout:.0f} s; last answer: {text}", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
