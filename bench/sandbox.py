"""How long the sandbox takes: `sandbox up` from a cached image to a served page, then a
`deploy` of a new release into it (and a rollback, and `down`).

    sudo .venv/bin/python bench/sandbox.py > bench/results/sandbox.txt

The real commands, as an operator runs them: `python -m infra sandbox up`, then in bash
`eval "$(... sandbox env)"` and `python -m infra deploy --source DIR` (this checkout's
release files, app.py edited: a new release id), `rollback`, and `sandbox down`. Each is
timed by this script's clock; the phases are the ones `up` reports. The image must be
cached (it is built first if not, and that time is reported apart). The sandbox's own
output goes to stderr; the result, with the host's load, to stdout. Needs root and QEMU,
like the sandbox; a state directory of its own, so it never touches .sandbox/.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra import release, vm  # noqa: E402

PHASE = re.compile(r"^sandbox \[\d+:\d\d\] (\w+): done in (\d+) s", re.M)


def timed(argv, env, cwd=ROOT):
    """(seconds, exit status, output) of a command, its output also shown on stderr."""
    started = time.monotonic()
    lines = []
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stderr.write(line)
            lines.append(line)
    return time.monotonic() - started, proc.returncode, "".join(lines)


def get(url):
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.status


def new_release(dest):
    for rel in release.source_files(ROOT):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    app = dest / "app.py"
    app.write_text(app.read_text() + f"\n# bench release {time.time()}\n")
    return dest


def load():
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    work = Path(tempfile.mkdtemp(prefix="milesahead-bench-sandbox-"))
    env = os.environ | {"MILESAHEAD_SANDBOX_DIR": str(work / "state")}
    py = sys.executable
    rows = []
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc {os.cpu_count()}, {os.uname().machine}")
    print(f"# command: {' '.join(sys.argv)}")
    print(f"# load average at start: {load()}")
    try:
        if not (vm.image_dir() / "base.qcow2").exists():
            seconds, status, _ = timed([py, "-m", "infra.vm", "build"], env)
            print(f"# the image was not cached: built in {seconds:.0f} s (not counted below)")
            if status:
                sys.exit("image build failed")

        started = time.monotonic()
        seconds, status, output = timed([py, "-m", "infra", "sandbox", "up"], env)
        if status:
            sys.exit(f"sandbox up failed (exit {status})")
        url = re.search(r"^The site: (\S+)", output, re.M).group(1)
        assert get(url) == 200
        rows.append(("`sandbox up`, cached image to a served page (GET / 200)", time.monotonic() - started))
        rows += [(f"  of which {phase}", int(took)) for phase, took in PHASE.findall(output)]

        eval_line = re.search(r'^eval "\$\(.* -m infra sandbox env\)"$', output, re.M).group(0)
        source = new_release(work / "release")
        for label, command in [
            ("`deploy` of a new release into it", f"{py} -m infra deploy --source {source}"),
            ("`rollback` to the release `up` deployed", f"{py} -m infra rollback"),
        ]:
            seconds, status, _ = timed(["bash", "-c", f"{eval_line} && {command}"], env)
            if status:
                sys.exit(f"{command} failed (exit {status})")
            assert get(url) == 200
            rows.append((label, seconds))
    finally:
        seconds, _status, _ = timed([py, "-m", "infra", "sandbox", "down"], env)
        rows.append(("`sandbox down`", seconds))
        shutil.rmtree(work, ignore_errors=True)
        print(f"# load average at end: {load()}")
        print()
        print("| step | seconds |")
        print("|---|---|")
        for label, took in rows:
            print(f"| {label} | {took:.0f} |")


if __name__ == "__main__":
    main()
