"""A verdict per kata from its tests' outcomes: done, failing, not started, broken.

harness.run.runner fills these from a pytest run it streams.
"""
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


@dataclass
class KataResult:
    kata: manifest.Kata
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    not_implemented: int = 0  # failures that only say the stub is untouched
    broken: int = 0  # failures that say the file does not import
    first_failure: str = ""
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
            if not self.first_failure:
                self.first_failure = f"{test.name}: {message.splitlines()[0] if message else 'failed'}"
