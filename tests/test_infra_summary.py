"""What the operator reads: pyinfra's log boiled down to changes, failures and the run's own lines.

The input is pyinfra 3's output as a deploy prints it (the shape of the VM lane's runs).
"""

import io

from infra.__main__ import Summary

LOG = """\
--> Loading config...
--> Connecting to hosts...
    [203.0.113.10] Connected

--> Beginning operation run...
--> Starting operation: Deploy a release | Take the deploy lock
    [203.0.113.10] Success

--> Starting operation: Deploy a release | Upload release 3f2a9c1b0d4e
    [203.0.113.10] Success

--> Starting operation: Deploy a release | Log the failure
    [203.0.113.10] No changes

--> Starting operation: Deploy a release | Health gate: /healthz reports the new release
    [203.0.113.10] not healthy with release 3f2a9c1b0d4e after 60 s; last answer: HTTP Error 503
    [203.0.113.10] Error: executed 1 commands

--> Starting operation: Deploy a release | Summary
    [203.0.113.10] » deploy of 3f2a9c1b0d4e FAILED its health gate: rolled back, 9a8b7c6d5e4f runs again
    [203.0.113.10] Success

--> Results:
    Operation                                   Changes   Errors
    Deploy a release | Take the deploy lock     1 (203.0.113.10)   -
"""


def summarize(text):
    out = io.StringIO()
    summary = Summary(out)
    for line in text.splitlines(keepends=True):
        summary.feed(line)
    return summary, out.getvalue().splitlines()


def test_the_summary_keeps_changes_failures_and_the_runs_own_words():
    summary, lines = summarize(LOG)
    assert lines == [
        "  changed: Take the deploy lock",
        "  changed: Upload release 3f2a9c1b0d4e",
        "  FAILED: Health gate: /healthz reports the new release (Error: executed 1 commands)",
        "    [203.0.113.10] not healthy with release 3f2a9c1b0d4e after 60 s; last answer: HTTP Error 503",
        "[203.0.113.10] deploy of 3f2a9c1b0d4e FAILED its health gate: rolled back, 9a8b7c6d5e4f runs again",
    ]
    assert summary.failed and summary.changed == ["Take the deploy lock", "Upload release 3f2a9c1b0d4e"]


def test_a_host_that_cannot_be_reached_is_named():
    _summary, lines = summarize(
        "--> Connecting to hosts...\n"
        "    [203.0.113.10] Could not connect (Timed out)\n"
        "--> pyinfra error: No hosts remaining!\n"
    )
    assert lines == ["[203.0.113.10] Could not connect (Timed out)", "--> pyinfra error: No hosts remaining!"]


def test_a_refusal_from_a_deploy_file_is_its_message_not_a_traceback():
    _summary, lines = summarize(
        "--> An exception occurred in: /repo/infra/deploys/setup.py:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/repo/infra/tasks/preflight.py", line 40, in check\n'
        "infra.tasks.preflight.PreflightError: web1: Grafana's apt key is not reachable from the host"
        " (...). Nothing was changed. ... --data alloy_enabled=false\n"
    )
    assert lines == [
        "refused: web1: Grafana's apt key is not reachable from the host (...). Nothing was changed."
        " ... --data alloy_enabled=false"
    ]
