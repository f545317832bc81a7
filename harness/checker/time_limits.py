"""Time limits that end an infinite loop, Hypothesis or not, and say where it was.

With pytest-timeout's signal method (the runner's, and `pytest --timeout N` on POSIX), one alarm
is not enough: Hypothesis catches the failure it raises and replays the failing example to report
it, entering the same loop with no alarm left. So once a test's limit is reached the alarm repeats
every second until the test is over; and a kata's later tests fail at once instead of each waiting
for the limit: one infinite loop costs one time limit, not one per test. The message names the
line the loop was on.
"""
import linecache
import signal

import pytest

TIMEOUT_MARK = "from pytest-timeout"
timed_out: set[str] = set()  # test files with a test that ran out of time


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings):
    if settings.method != "signal" or not hasattr(signal, "SIGALRM"):
        return None  # pytest-timeout's own timer

    def handler(signum, frame):
        __tracebackhide__ = True
        timed_out.add(str(item.path))
        pytest.fail(f"Timeout (>{settings.timeout:g}s) {TIMEOUT_MARK}: the test took longer than its time limit "
                    f"(an infinite loop?){where(frame)}", pytrace=False)

    def cancel():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout, 1.0)
    return True


def where(frame) -> str:
    """The line the code was running when the alarm came, outside the harness and the test libraries."""
    while frame is not None and any(part in frame.f_code.co_filename for part in ("/harness/", "/site-packages/", "<frozen")):
        frame = frame.f_back
    if frame is None:
        return ""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"\nIt was running {frame.f_code.co_filename}, line {frame.f_lineno}, in {frame.f_code.co_name}: {line}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if str(item.path) in timed_out:
        pytest.fail("not run: an earlier test of this kata ran out of time (an infinite loop?)", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.failed and TIMEOUT_MARK in (getattr(getattr(report.longrepr, "reprcrash", None), "message", "") or ""):
        timed_out.add(str(item.path))
    return report
