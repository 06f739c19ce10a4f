"""The run summary: the reason of each failure, the counts, where the light curves went."""

from __future__ import annotations

from pathlib import Path

from tessphot.runner.report import RunReport, format_summary, status_reason
from tessphot.tasks import STATUS
from tessphot.tasks.result import TaskResult

WARNED_THEN_FAILED = [
    "WARNING: 3 cadences of the stamp are all NaN",
    "ERROR: the target is not in the catalog",
    "ERROR: a later error",
]


def test_the_reason_of_a_failure_is_its_first_error_not_a_warning():
    assert status_reason(WARNED_THEN_FAILED, "ERROR") == "ERROR: the target is not in the catalog"
    assert status_reason(WARNED_THEN_FAILED, "WARNING").startswith("WARNING: 3 cadences")
    aborted = ["WARNING: slow", "ABORT: interrupted"]
    assert status_reason(aborted, "ABORT") == "ABORT: interrupted"
    # An ERROR task with only warnings (an error that was not logged): the first message.
    assert status_reason(["WARNING: only this"], "ERROR") == "WARNING: only this"
    assert status_reason([], "ERROR") == ""


def test_summary_gives_reasons_counts_and_the_output_folder(tmp_path):
    report = RunReport(output=tmp_path / "lightcurves")
    tasks = [
        ({"priority": 1, "starid": 11, "tmag": 9.0}, STATUS.OK, []),
        ({"priority": 2, "starid": 22, "tmag": 10.0}, STATUS.ERROR, WARNED_THEN_FAILED),
        ({"priority": 3, "starid": 33, "tmag": 11.0}, STATUS.WARNING, ["WARNING: small"]),
    ]
    for task, status, errors in tasks:
        result = TaskResult(task["priority"], status, elaptime=0.5, details={"errors": errors})
        report.record(task, result, status)
    report.summary = {s.name: 0 for s in STATUS} | {"OK": 5, "ERROR": 1, "WARNING": 1}
    lines = format_summary(report).splitlines()
    assert lines[0].endswith(": OK 1, ERROR 1, WARNING 1")  # the order of the statuses
    assert lines[1] == "  ERROR TIC 22 (priority 2): ERROR: the target is not in the catalog"
    assert lines[2].startswith("Todo list: OK 5, ERROR 1, WARNING 1;")
    assert lines[-1] == f"Light curves in {Path(tmp_path / 'lightcurves')}"
    assert report.failed == 1
