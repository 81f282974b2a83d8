"""The VM lane's timings: every toolkit command it ran, how long it took, from its log.

    .venv/bin/python -m pytest tests/vm/test_toolkit_lane.py -s > lane.log
    .venv/bin/python bench/vm_lane_timings.py lane.log

The lane prints `$ python -m infra ARGS  -> exit N in S s` for each command, and
`[test_name: S s]` for each step; this lists both, in order. Note the host's load
beside the result: the lane shares two cores with whatever else runs.
"""

import re
import sys

COMMAND = re.compile(r"^\$ python -m infra (.*?)  -> exit (\d+) in (\d+) s$")
STEP = re.compile(r"\[(test_\w+): (\d+) s\]")


def timings(lines):
    for line in lines:
        if m := COMMAND.match(line.strip()):
            yield "command", m.group(1), int(m.group(3)), f"exit {m.group(2)}"
        for m in STEP.finditer(line):
            yield "step", m.group(1), int(m.group(2)), ""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit(__doc__)
    with open(argv[0], errors="replace") as f:
        for kind, name, seconds, note in timings(f):
            print(f"{kind:8} {seconds:5d} s  {name} {note}".rstrip())


if __name__ == "__main__":
    main()
