"""A verdict per kata from its tests' outcomes: done, failing, not started, broken.

harness.run.runner fills these from a pytest run it streams.
"""
import re
from dataclasses import dataclass, field

from harness import manifest
from harness.failures import FailureKind

NOT_IMPLEMENTED = "not implemented yet"

@dataclass
class TestOutcome:
    __test__ = False  # not a pytest test class
    nodeid: str
    name: str  # the test's name within its file, parameters included
    outcome: str  # passed, failed or skipped
    message: str = ""
    output: str = ""
    duration: float = 0.0
    kind: "FailureKind | str" = ""  # for a failure: its kind; "" otherwise
    recognised: bool = False  # the test's diagnosis recognised the mistake: its hint fits


@dataclass
class KataResult:
    kata: manifest.Kata
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    not_implemented: int = 0  # failures that only say the stub is untouched
    broken: int = 0  # failures that say the file does not import
    failures: list[str] = field(default_factory=list)
    tests: list[TestOutcome] = field(default_factory=list)
    protections: list[str] = field(default_factory=list)  # in force while its code ran (isolated runs)

    @property
    def status(self) -> str:
        if self.failed == 0 and self.passed > 0:
            return "done"
        if self.broken:
            return "broken"
        if self.failed and self.not_implemented == self.failed:
            return "not started"
        if self.failed:
            return "failing"
        return "no tests"

    def add(self, test: TestOutcome) -> None:
        self.tests.append(test)
        if test.outcome == "skipped":
            self.skipped += 1
        elif test.outcome == "passed":
            self.passed += 1
        else:
            message = test.message.strip()
            self.failed += 1
            self.failures.append(f"{test.name}: {message}")
            if test.kind == FailureKind.NOT_IMPLEMENTED:
                self.not_implemented += 1
            elif test.kind == FailureKind.IMPORT_ERROR:
                self.broken += 1

    @property
    def most_telling(self) -> "TestOutcome | None":
        """The failure that says most about what is wrong, of all this kata's: a file that does not
        import, then a wrong type, shape or dtype (the first thing to fix), then a failure whose
        diagnosis recognised the mistake, then the first failure. None when nothing failed."""
        failed = [test for test in self.tests if test.outcome == "failed"]
        return min(failed, key=_telling_rank, default=None)

    @property
    def verdict(self) -> str:
        """The most telling failure, whole: the test, its message (hint included), and the input that
        failed when Hypothesis found it. The same text in `kata`, `kata watch` and every report."""
        test = self.most_telling
        if test is None:
            return ""
        text = f"{test.name}: {test.message.strip() or 'failed'}"
        example = falsifying_example(test.output)
        return f"{text}\n{example}" if example and example not in text else text

    @property
    def first_failure(self) -> str:  # the name the reports and `kata --json` have always used
        return self.verdict


def _telling_rank(test: TestOutcome) -> int:
    if test.kind == FailureKind.IMPORT_ERROR:
        return 0
    if test.kind in (FailureKind.TYPE_CHECK, FailureKind.SHAPE):  # SHAPE: a suite's check_shape failed
        return 1
    if test.recognised:
        return 2
    return 3


def falsifying_example(output: str) -> str:
    """Hypothesis's "Falsifying example: test(sizes..., seed=...)" in a failure's output, or ""."""
    match = re.search(r"^Falsifying example: .*?(?:\)$|$)", output or "", flags=re.M | re.S)
    return match.group(0).strip() if match else ""
