"""Tests for katas/sampling/sample_next_token.py (sample_next_token), against Hugging Face's processors."""
import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.strategies import sampling_inputs, seeds

KATA = "sampling.sample_next_token"
sample_next_token = under_test(KATA)


@st.composite
def options(draw) -> dict:
    return dict(
        temperature=draw(st.sampled_from([1.0, 0.5, 0.8, 1.7])),
        top_k=draw(st.sampled_from([0, 1, 3, 10])),
        top_p=draw(st.sampled_from([1.0, 0.3, 0.7, 0.9])),
        repetition_penalty=draw(st.sampled_from([1.0, 1.3, 0.8])),
    )


def hf_next_token(logits, tokens, seed, temperature, top_k, top_p, repetition_penalty):
    """Hugging Face's generate(do_sample=True) for one step: its processors in its order, then multinomial."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
    if temperature != 1.0:
        processors.append(TemperatureLogitsWarper(temperature))
    if top_k:
        processors.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p))
    scores = processors(tokens, logits.clone())
    torch.manual_seed(seed)
    return torch.multinomial(scores.softmax(dim=-1), 1).squeeze(-1)


@given(inputs=sampling_inputs(), options=options())
def test_shape_and_dtype(inputs, options, device):
    logits = inputs.logits.to(device)
    check_shape(sample_next_token(logits, inputs.tokens.to(device), **options), (logits.shape[0],), torch.int64,
                kata=KATA, what="sample_next_token output", axes="batch")


@given(inputs=sampling_inputs(), options=options(), seed=seeds)
def test_same_seed_same_tokens_as_hugging_face(inputs, options, seed, device):
    logits, tokens = inputs.logits.to(device).repeat(4, 1), inputs.tokens.to(device).repeat(4, 1)
    expected = hf_next_token(logits, tokens, seed, **options)
    torch.manual_seed(seed)
    check_tensor(sample_next_token(logits, tokens, **options), expected, kata=KATA, what=f"tokens sampled with {options}",
                 axes="batch", hint="Order: repetition penalty, frequency penalty, temperature, top-k, top-p, "
                 "softmax, torch.multinomial(probs, 1) with the generator passed through.")


@given(inputs=sampling_inputs(), penalty=st.sampled_from([0.0, 0.5, 2.0]), seed=seeds)
def test_frequency_penalty_matches_reference(inputs, penalty, seed, device):
    logits, tokens = inputs.logits.to(device).repeat(4, 1), inputs.tokens.to(device).repeat(4, 1)
    expected = reference(KATA)(logits, tokens, frequency_penalty=penalty, generator=torch.Generator(device).manual_seed(seed))
    check_tensor(sample_next_token(logits, tokens, frequency_penalty=penalty, generator=torch.Generator(device).manual_seed(seed)),
                 expected, kata=KATA, what=f"tokens sampled with frequency_penalty={penalty}", axes="batch")


@given(inputs=sampling_inputs(), penalty=st.sampled_from([1.0, 1.5, 0.7]))
def test_without_sampling_it_is_greedy_after_the_penalties(inputs, penalty, device):
    from transformers import RepetitionPenaltyLogitsProcessor

    logits, tokens = inputs.logits.to(device), inputs.tokens.to(device)
    expected = RepetitionPenaltyLogitsProcessor(penalty)(tokens, logits.clone()).argmax(dim=-1)
    check_tensor(sample_next_token(logits, tokens, do_sample=False, repetition_penalty=penalty, temperature=0.5, top_k=1),
                 expected, kata=KATA, what="tokens chosen with do_sample=False", axes="batch",
                 hint="do_sample=False: the penalties, then greedy; temperature and filters do not apply.")


# Each option away from its default, and at the value that means "off" (which must change nothing).
CHANGED = dict(do_sample=False, temperature=0.6, top_k=3, top_p=0.7, repetition_penalty=1.4, frequency_penalty=0.8)
OFF = dict(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, frequency_penalty=0.0)
PAIRS = [{a: CHANGED[a], b: CHANGED[b]} for a, b in itertools.combinations(CHANGED, 2)]
PAIRS += [{a: CHANGED[a], b: OFF[b]} for a in CHANGED for b in OFF if a != b]


def ties_and_repeats(device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    logits = (3.0 * torch.randn(6, 9, generator=generator)).to(device)
    logits[0, :4] = 1.5  # a tie
    tokens = torch.randint(0, 5, (6, 7), generator=generator).to(device)
    tokens[1] = 0  # token 0 repeated: a falsy id still counts
    return logits, tokens


@pytest.mark.parametrize("options", PAIRS, ids=[",".join(f"{k}={v}" for k, v in o.items()) for o in PAIRS])
def test_every_pair_of_options_as_the_reference(options, device):
    """Two options at a time (one of them possibly at its "off" value), greedy included, on
    inputs with ties and repeats: each option must be applied in its place and skipped only when off."""
    logits, tokens = ties_and_repeats(device)
    expected = reference(KATA)(logits, tokens, generator=torch.Generator(device).manual_seed(11), **options)
    actual = sample_next_token(logits, tokens, generator=torch.Generator(device).manual_seed(11), **options)
    check_tensor(actual, expected, kata=KATA, what=f"tokens chosen with {options}", axes="batch",
                 hint="Order: repetition penalty, frequency penalty, then (do_sample=False) greedy, or temperature, "
                 "top-k, top-p and a draw with the generator; an option at its off value (temperature 1, top_k 0, "
                 "top_p 1, repetition_penalty 1, frequency_penalty 0) changes nothing.")



# Values that are "off" for another option, or round numbers: each is on here, and must be applied.
ON_AT_ROUND_VALUES = [dict(frequency_penalty=1.0), dict(repetition_penalty=2.0), dict(temperature=2.0),
                      dict(temperature=0.5, top_k=1), dict(frequency_penalty=1.0, do_sample=False)]


@pytest.mark.parametrize("options", ON_AT_ROUND_VALUES, ids=[",".join(f"{k}={v}" for k, v in o.items()) for o in ON_AT_ROUND_VALUES])
def test_an_option_is_skipped_only_at_its_own_off_value(options, device):
    logits, tokens = ties_and_repeats(device)
    logits = logits.repeat(4, 1)
    tokens = tokens.repeat(4, 1)
    expected = reference(KATA)(logits, tokens, generator=torch.Generator(device).manual_seed(3), **options)
    actual = sample_next_token(logits, tokens, generator=torch.Generator(device).manual_seed(3), **options)
    check_tensor(actual, expected, kata=KATA, what=f"tokens chosen with {options}", axes="batch",
                 hint="Skip an option only at its own off value: frequency_penalty 0 (1.0 is a penalty, "
                 "repetition_penalty's off value is 1), repetition_penalty 1, temperature 1, top_k 0, top_p 1.")
