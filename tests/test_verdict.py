"""The verdict: of a kata's failures, the most telling one, whole (harness.run.results.KataResult.verdict),
ranked by the kind the checker recorded, never by the message's words."""
import pytest

from harness import manifest
from harness.failures import FailureKind
from harness.run import runner
from harness.run.results import KataResult, TestOutcome

KATA = manifest.get("attention.causal_mask")


def failed(name: str, kind: FailureKind, message: str, recognised: bool = False) -> TestOutcome:
    return TestOutcome(f"katas/attention/test_causal_mask.py::{name}", name, "failed", message, kind=kind, recognised=recognised)


def verdict_of(*tests: TestOutcome) -> str:
    result = KataResult(KATA)
    for test in tests:
        result.add(test)
    return result.verdict


def test_a_wrong_shape_comes_before_a_recognised_mistake_and_both_before_the_first_failure():
    first = failed("test_values", FailureKind.ASSERTION, "wrong values")
    recognised = failed("test_pitfall", FailureKind.ASSERTION, "wrong values: divide by sqrt(d_head)", recognised=True)
    shape = failed("test_shape", FailureKind.SHAPE, "output has the wrong shape: expected (2, 3)")
    assert verdict_of(first, recognised, shape).startswith("test_shape:")
    assert verdict_of(first, recognised).startswith("test_pitfall:")
    assert verdict_of(first).startswith("test_values:")


def test_words_in_a_message_do_not_make_a_shape_failure():
    """A learner's own exception may say "has the wrong shape": only the checker's record counts."""
    first = failed("test_values", FailureKind.ASSERTION, "wrong values")
    words = failed("test_later", FailureKind.ERROR, "your code raised ValueError: x has the wrong shape")
    assert verdict_of(first, words).startswith("test_values:")


@pytest.mark.subprocess
def test_the_checker_records_a_check_shape_failure_as_shape(tmp_path):
    wrong = tmp_path / "causal_mask.py"
    wrong.write_text(KATA.reference_file.read_text().replace("torch.finfo(scores.dtype).min)", "torch.finfo(scores.dtype).min).double()"))
    result = runner.run_katas([KATA], "--reference", f"--swap={KATA.id}={wrong}")[KATA.id]
    kinds = {test.kind for test in result.tests if test.outcome == "failed"}
    assert FailureKind.SHAPE in kinds, kinds
    assert result.most_telling.kind == FailureKind.SHAPE
