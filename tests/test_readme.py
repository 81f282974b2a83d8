"""The README and the docs/ pages as a newcomer reads them: their marked shell blocks work as written.

A block (in README.md or any docs/*.md) preceded by `<!-- readme-test: run -->` must exit 0; one preceded by
`<!-- readme-test: serve -->` must bring up the site (polled on /healthz, with $PORT set
to a free port), and is then stopped. Blocks run in a copy of the checkout, as a fresh
clone would have it, sharing only the already-built .venv.
"""

import glob
import os
import re
import shutil
import signal
import subprocess

import pytest
import requests
from helpers import ROOT, free_port, wait_until_up

import store

MARKED_BLOCK = re.compile(r"<!-- readme-test: (run|serve) -->\s*\n```(?:sh|bash|console)\n(.*?)```", re.S)


DOCUMENTS = ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]


def readme_blocks():
    """(document, kind, block) for every marked block, the README's first."""
    blocks = []
    for name in DOCUMENTS:
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            blocks += [(name, kind, body.strip()) for kind, body in MARKED_BLOCK.findall(f.read())]
    return blocks


def anchors(path):
    """The #fragments a page's headings get, as GitHub makes them."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    slugs = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slugs.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return slugs


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_link_between_the_pages_leads_somewhere(document):
    """A chapter moved to docs/ leaves no link to where it used to be."""
    with open(os.path.join(ROOT, document), encoding="utf-8") as f:
        links = re.findall(r"\]\(([^)\s]+)\)", f.read())
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # another site's page
        target, _, fragment = link.partition("#")
        path = (
            os.path.normpath(os.path.join(ROOT, os.path.dirname(document), target))
            if target
            else os.path.join(ROOT, document)
        )
        if not os.path.exists(path) or (fragment and path.endswith(".md") and fragment not in anchors(path)):
            broken.append(link)
    assert broken == []


def test_the_docs_pages_have_marked_blocks_too():
    assert {name for name, _, _ in readme_blocks()} >= {"README.md", "docs/desk.md", "docs/pipeline.md"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """The repository's files (tracked and new, not ignored) copied to a temp dir."""
    dest = tmp_path_factory.mktemp("clone")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = os.path.join(ROOT, name)
        if not os.path.isfile(source):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
        shutil.copy2(source, os.path.join(dest, name))
    os.symlink(os.path.join(ROOT, ".venv"), dest / ".venv")
    return dest


def test_readme_has_the_three_commands_first():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert [b.strip() for b in blocks[:3]] == ["make run", "make test", "sudo make sandbox"]


@pytest.mark.parametrize(
    "document, kind, block", readme_blocks(), ids=lambda v: v if v in ("run", "serve") or v.endswith(".md") else None
)
def test_readme_block_works_as_written(checkout, document, kind, block):
    env = dict(os.environ)
    for name in ("MILESAHEAD_CONFIG", "MILESAHEAD_RELEASE", "VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    if kind == "run":
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=checkout, env=env, capture_output=True)
        assert result.returncode == 0, (
            f"{document} block failed:\n{block}\n---\n{result.stdout.decode()}{result.stderr.decode()}"
        )
        return
    env["PORT"] = str(free_port())
    with subprocess.Popen(
        ["bash", "-c", block],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as server:
        try:
            reply = wait_until_up(f"http://127.0.0.1:{env['PORT']}/healthz", timeout=120)
            assert reply.json()["cards"] == len(store.load_seed_cards())
            assert requests.get(f"http://127.0.0.1:{env['PORT']}/cards", timeout=5).status_code == 200
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.communicate(timeout=20)
