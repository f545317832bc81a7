"""The beam-search suites' messages name the rule that was broken and the step where a search parted
from the reference's: each fires on its own mistake and not on the others."""
import importlib.util

import pytest
import torch

from harness import manifest
from harness.testing import reference
from harness.testing.recorders import where_searches_part

PROMPT_LEN = 2


def beams(*generated: list) -> torch.Tensor:
    """The beams fed to the model: a 2-token prompt, then the generated tokens of each beam."""
    return torch.tensor([[0, 1, *row] for row in generated])


def test_the_same_beams_at_every_step_point_at_what_is_kept():
    calls = [beams([], []), beams([3], [4])]
    message = where_searches_part(calls, [call.clone() for call in calls], PROMPT_LEN)
    assert "same beams at every step" in message and "step" in message


def test_the_first_step_with_other_beams_is_named_with_its_prompt():
    theirs = [beams([], []), beams([3], [4]), beams([], []), beams([5], [6])]
    mine = theirs[:3] + [beams([6], [5])]
    message = where_searches_part(mine, theirs, PROMPT_LEN)
    assert "at step 2 of prompt 1" in message and "[[6], [5]]" in message and "[[5], [6]]" in message


def test_stopping_early_or_late_is_named_as_the_stopping_rule():
    theirs = [beams([], []), beams([3], [4]), beams([3, 1], [4, 2])]
    assert "On prompt 0, your search stopped after step 2" in where_searches_part(theirs[:2], theirs, PROMPT_LEN)
    assert "On prompt 0, your search went on past the reference's last step (2)" in where_searches_part(
        theirs, theirs[:2], PROMPT_LEN)


def test_a_prompt_searched_longer_is_not_mistaken_for_the_next_prompts_beams():
    """The first prompt searched a step too long: the second prompt's calls start later, not differently."""
    first, second = [beams([], []), beams([3], [4])], [beams([], []), beams([5], [6])]
    mine = first + [beams([3, 1], [4, 2])] + second
    assert "On prompt 0, your search went on past" in where_searches_part(mine, first + second, PROMPT_LEN)


def beam_step_suite():
    path = manifest.ROOT / "katas" / "beam_search" / "test_beam_step.py"
    spec = importlib.util.spec_from_file_location("beam_step_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_step():
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 6, (2, 3), generator=generator)
    log_probs = torch.randn(2, 6, generator=generator).log_softmax(dim=-1)
    return reference("beam_search.beam_step")(tokens, torch.tensor([0.0, -1.0]), log_probs, eos_token_id=int(tokens[0, 0]))


RULE_WORDS = {"parents": "parents[i] is the index", "finished mask": "is finished when", "candidates": "2 * num_beams best of every",
              "next beams' tokens": "the num_beams best candidates that did not end"}


@pytest.mark.parametrize("broken", list(RULE_WORDS))
def test_beam_steps_message_names_the_rule_of_the_result_that_differs(broken):
    suite = beam_step_suite()
    expected = one_step()
    actual = list(expected)
    index = suite.NAMES.index(broken)
    actual[index] = {"parents": lambda x: 1 - x, "finished mask": lambda x: ~x, "candidates": lambda x: x.roll(1, dims=1),
                     "next beams' tokens": lambda x: x.flip(0)}[broken](expected[index])
    with pytest.raises(pytest.fail.Exception) as failure:
        suite.check_step(tuple(actual), expected)
    message = str(failure.value)
    assert RULE_WORDS[broken] in message, message
    assert not [words for name, words in RULE_WORDS.items() if name != broken and words in message], message
