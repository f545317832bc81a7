"""Why a test failed: one kind per failure, decided by the exception's type or by the runner (a
time limit, a crash, a budget), never by its wording. The checker records it, the runner reads it,
every verdict and report shows it (JUnit's failure type)."""
from enum import Enum

FAILURE_KIND = "kata_failure_kind"  # the pytest user property a test's kind is recorded under
RECOGNISED = "kata_recognised"  # ... and whether its diagnosis recognised the mistake (a fitting hint)
_recognised: list[str] = []  # hints given for a recognised mistake during the test now running
_shape_failed = False  # check_shape failed during the test now running


class FailureKind(str, Enum):
    NOT_IMPLEMENTED = "not_implemented"
    IMPORT_ERROR = "import_error"
    TYPE_CHECK = "type_check"
    SHAPE = "shape"
    ASSERTION = "assertion"
    ERROR = "error"
    TIMEOUT = "timeout"
    CRASH = "crash"
    BUDGET = "budget"
    FORBIDDEN = "forbidden"

    def __str__(self) -> str:
        return self.value

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    FailureKind.NOT_IMPLEMENTED: "the stub still raises NotImplementedError",
    FailureKind.IMPORT_ERROR: "the kata file does not import, or lacks its symbol",
    FailureKind.TYPE_CHECK: "a shape or dtype does not match the annotations",
    FailureKind.SHAPE: "an output of the wrong type, shape, dtype or device",
    FailureKind.ASSERTION: "a wrong answer",
    FailureKind.ERROR: "an exception raised in the kata's code",
    FailureKind.TIMEOUT: "an infinite loop (a time limit)",
    FailureKind.CRASH: "the process running the code ended",
    FailureKind.BUDGET: "a time budget was spent",
    FailureKind.FORBIDDEN: "the kata's code tried something not allowed while graded",
}


def note_recognised(hint: str) -> None:
    """A test's diagnosis recognised the mistake (harness.testing.asserts.diagnose): its failure is
    the most telling of its kata's (harness.run.results.KataResult.verdict)."""
    _recognised.append(hint)


def note_shape_failure() -> None:
    """A suite's check_shape found the wrong type, shape, dtype or device: the checker records the
    failure as FailureKind.SHAPE, the first thing to fix (harness.run.results.KataResult.verdict)."""
    global _shape_failed
    _shape_failed = True


def take_shape_failure() -> bool:
    """Whether check_shape failed since the last call (the checker asks after each failing test)."""
    global _shape_failed
    found, _shape_failed = _shape_failed, False
    return found


def take_recognised() -> bool:
    """Whether a mistake was recognised since the last call (the checker asks after each test)."""
    found = bool(_recognised)
    _recognised.clear()
    return found


def parse(value: str) -> "FailureKind | str":
    """A kind read back from an events line: the member, or "" for none (an unknown value is an error)."""
    return FailureKind(value) if value else ""
