"""A pytest plugin that streams each test's outcome as one JSON line (for `kata` and `kata grade`).

Loaded with `-p harness.checker.events`; the lines go to the runner's events socket (harness.checker.settings),
which only this process holds. The caller reads them while
pytest runs: a progress bar, and verdicts that survive a test process that dies (a learner's
os._exit, a crash, a kill after a hang): everything reported before is kept.

Lines: {"event": "collected", "tests": [nodeid, ...]}, {"event": "start", "nodeid": ...},
{"event": "test", "nodeid", "outcome": passed|failed|skipped, "message", "output", "duration"},
{"event": "finished"}.

Time limits: harness.checker.time_limits.
"""
import json
import socket

import pytest

from harness.checker import time_limits
from harness.checker.settings import CheckerSettings
from harness.failures import FAILURE_KIND, RECOGNISED, FailureKind

_events = None


def _emit(**event) -> None:
    _events.write(json.dumps(event) + "\n")
    _events.flush()


def pytest_configure(config: pytest.Config) -> None:
    global _events
    path = CheckerSettings.from_env().events
    if path and _events is None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(path)
        _events = connection.makefile("w", encoding="utf-8")
        from harness.checker import isolation

        isolation.on_protections(lambda kata_id, protections: _emit(event="protections", kata=kata_id, protections=protections))


def pytest_collection_finish(session: pytest.Session) -> None:
    if _events:
        _emit(event="collected", tests=[item.nodeid for item in session.items])


def pytest_runtest_logstart(nodeid: str, location) -> None:
    if _events:
        _emit(event="start", nodeid=nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _events:
        return
    # One line per test: its call, or a setup/teardown that failed (or skipped it).
    if report.when == "call" or (report.when == "setup" and not report.passed) or (report.when == "teardown" and report.failed):
        _emit(event="test", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
              message=_message(report), output=report.longreprtext if report.failed else "", duration=report.duration,
              kind=_kind(report) if report.failed else "",
              recognised=any(key == RECOGNISED for key, _ in report.user_properties))


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    if _events:
        _emit(event="finished", exitstatus=int(exitstatus))


def _kind(report: pytest.TestReport) -> str:
    """Why the test failed: recorded by the kata plugin from the exception's type, or a time limit."""
    if time_limits.TIMEOUT_MARK in _message(report) or str(report.fspath) in time_limits.timed_out and report.when == "setup":
        return FailureKind.TIMEOUT.value
    kinds = [value for key, value in report.user_properties if key == FAILURE_KIND]
    return kinds[-1] if kinds else FailureKind.ERROR.value


def _message(report: pytest.TestReport) -> str:
    """The one-paragraph reason, as JUnit XML's failure message has it."""
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)
