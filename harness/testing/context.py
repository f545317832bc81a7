"""Test helper shared by the generation suites: going past the context is refused up front,
with the one message of harness.config.context_error."""
import pytest

from harness.config import context_error
from harness.testing import stuck
from harness.testing.recorders import PositionCounter


def eos_zero_is_reached(tokens, prompt_len: int) -> None:
    """A guard for the tests of eos_token_id=0: the expected tokens do end a row with id 0, so the test
    can tell `eos_token_id is not None` from a truthiness test that takes 0 for "no EOS"."""
    assert (tokens[:, prompt_len:] == 0).any(), "this case must generate id 0 at least once (pick another seed)"


def check_refused_up_front(run, model, prompt_len: int, max_new_tokens: int, *, kata: str, what: str) -> None:
    """`run()` (which generates max_new_tokens after a prompt_len prompt with `model`, a parts.GPT2)
    raises context_error(prompt_len, max_new_tokens, n_ctx) before embedding a single position."""
    __tracebackhide__ = True
    expected = str(context_error(prompt_len, max_new_tokens, model.cfg.n_ctx))
    with PositionCounter(model) as counter:
        with pytest.raises(ValueError) as error:
            run()
    assert str(error.value) == expected, (
        f"{what}: going past the context must raise harness.config.context_error(prompt_len, max_new_tokens, n_ctx), "
        f"the message every generation function gives:\n  expected {expected!r}\n  got      {str(error.value)!r}\n{stuck(kata)}")
    assert counter.calls == [], (
        f"{what}: the model ran on {counter.calls} positions before the error. Check prompt_len + max_new_tokens "
        f"against model.cfg.n_ctx first, before running anything.\n{stuck(kata)}")
