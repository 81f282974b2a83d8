"""The review page's word diff: bounded time for any two revisions (issue 11).

Times workflow.diff_words on two revisions of N words, for three kinds of change: one
word edited in the middle, one paragraph in ten rewritten, every word different. It
compares the bounded diff (common beginning and end trimmed, word-by-word comparison
only under workflow.WORD_DIFF_LIMIT) with the plain difflib comparison it replaced,
which is skipped where it would take minutes (`--plain-up-to`).

    .venv/bin/python bench/bench_diff.py [--words 1000,5000,20000] [--plain-up-to 20000]
"""

import argparse
import difflib
import os
import random
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import workflow  # noqa: E402

# Article-like text: a small vocabulary, so common words repeat as they do in prose (the
# repeats are what made the plain comparison slow).
WORDS = (
    "the a of to and in for on is with points miles bonus card annual fee transfer partner "
    "lounge hotel airline award offer spend after first months you your it this that"
).split()


def revision(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    return "\n".join(" ".join(words[i : i + 100]) for i in range(0, n, 100))  # 100-word paragraphs


def changed(rng, text, kind):
    paragraphs = text.split("\n")
    if kind == "one word":
        words = text.split(" ")
        words[len(words) // 2] = "CHANGED"
        return " ".join(words)
    if kind == "one paragraph in ten":
        return "\n".join(revision(rng, 100) if i % 10 == 5 else p for i, p in enumerate(paragraphs))
    return revision(rng, len(text.split()))


def plain(a, b):
    """What diff_words did before: every word against every word."""
    old, new = re.findall(r"\s*\S+|\s+", a), re.findall(r"\s*\S+|\s+", b)
    return difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", default="1000,5000,20000", help="revision sizes, comma-separated")
    parser.add_argument("--plain-up-to", type=int, default=5000, help="largest size to time the plain diff at")
    args = parser.parse_args(argv)
    rng = random.Random(11)
    print(f"WORD_DIFF_LIMIT = {workflow.WORD_DIFF_LIMIT:,} word pairs")
    print(f"{'words':>6}  {'change':<22} {'bounded s':>10} {'segments':>9}  {'plain s':>8}")
    for n in [int(w) for w in args.words.split(",")]:
        base = revision(rng, n)
        for kind in ("one word", "one paragraph in ten", "every word"):
            other = changed(rng, base, kind)
            seconds, segments = timed(workflow.diff_words, base, other)
            assert "".join(t for op, t in segments if op != "ins") == base
            assert "".join(t for op, t in segments if op != "del") == other
            shown = f"{timed(plain, base, other)[0]:8.2f}" if n <= args.plain_up_to else "       -"
            print(f"{n:>6}  {kind:<22} {seconds:>10.3f} {len(segments):>9}  {shown}", flush=True)


if __name__ == "__main__":
    main()
