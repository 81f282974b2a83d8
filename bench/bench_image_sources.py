"""Image search: the five sources really run concurrently.

Starts the five image-API stand-ins on loopback, each answering after its own
delay (the slowest one sets the pace), then times images.search_all (every
source and query term at once) against calling the same five searches one after
another. Concurrent total should sit close to the slowest source; the ratio
total/slowest is printed (1.0 is perfect overlap), and so is the speed-up over
the sequential calls.

    .venv/bin/python bench/bench_image_sources.py [--repeat 5] [--delays 0.2,0.4,0.6,0.8,1.0]
"""

import argparse
import copy
import os
import statistics
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from standins.images import ImageServers  # noqa: E402

import config as configuration  # noqa: E402
import images  # noqa: E402

TERMS = ["Chase Sapphire Preferred bonus", "welcome offer highest"]


def sequential(config, terms):
    """The same requests, one after another: what the pipeline would cost without threads."""
    settings = config["images"]
    common = {"User-Agent": images.user_agent(config)}

    def get(url, params=None, headers=None):
        response = requests.get(url, params=params, headers={**common, **(headers or {})}, timeout=10)
        response.raise_for_status()
        return response.json()

    for source in images.SOURCES:
        for term in terms:
            images.SEARCHES[source](dict(settings[source]), term, settings["per_source"], get)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--delays", default="0.2,0.4,0.6,0.8,1.0", help="per-source reply delay, seconds")
    args = parser.parse_args()
    delays = dict(zip(images.SOURCES, (float(d) for d in args.delays.split(",")), strict=True))
    config = copy.deepcopy(configuration.DEFAULTS)
    with ImageServers(delays=delays) as servers:
        servers.configure(config)
        config["images"]["timeout_seconds"] = 10
        concurrent, serial = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            candidates, outcomes = images.search_all(config, TERMS)
            concurrent.append(time.perf_counter() - started)
            assert all(set(o) == {"ok"} for o in outcomes.values()), outcomes
            started = time.perf_counter()
            sequential(config, TERMS)
            serial.append(time.perf_counter() - started)
    slowest = max(delays.values())
    total = statistics.median(concurrent)
    one_by_one = statistics.median(serial)
    print(f"sources and reply delays: {', '.join(f'{s} {d:g}s' for s, d in delays.items())}")
    print(f"query terms: {len(TERMS)} (so {len(TERMS) * len(delays)} searches), rounds: {args.repeat}")
    print(f"candidates kept: {len(candidates)}")
    print(f"concurrent search_all (median): {total:.3f}s")
    print(f"slowest single source:          {slowest:.3f}s")
    print(f"ratio total/slowest:            {total / slowest:.2f}  (1.00 = perfect overlap)")
    print(
        f"one after another (median):     {one_by_one:.3f}s  (sum of delays x terms = {sum(delays.values()) * len(TERMS):.1f}s)"
    )
    print(f"speed-up from concurrency:      {one_by_one / total:.1f}x")


if __name__ == "__main__":
    main()
