"""Tests for katas/kv_cache/cached_beam_search.py (beam_search_with_cache): the results of parts.beam_search
and of Hugging Face's generate(num_beams=k), with one new token per beam per step."""
import copy
import itertools

import pytest
import torch

from harness.config import Config
from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.context import check_refused_up_front
from harness.testing.data import random_tokens
from harness.testing.dtypes import check_caches_on_meta, check_loop_on_meta
from harness.testing.oracles import hf_generate, hf_gpt2, likely_eos, reference_gpt2, reference_gpt2_with_ties
from harness.testing.recorders import PositionCounter

KATA = "kv_cache.cached_beam_search"
beam_search_with_cache = under_test(KATA)
uncached_beam_search = reference("beam_search.beam_search")
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=32)
CASES = [
    dict(eos=eos, length_penalty=penalty, early_stopping=early, no_repeat_ngram_size=ngram)
    for eos, penalty, early, ngram in itertools.product(["none", "likely"], [0.0, 2.0], [True, False], [0, 2])
]


REORDER_HINT = ("After beam_step, reorder the cache with its parents (row i then holds the past of new beam i, "
                "whose parent is parents[i]), then feed only each beam's last token.")
STOP_HINT = "After every step, ask the pool: pool.is_done(scores[0], tokens generated so far), with the best live beam's raw sum."


def check_search(actual, expected_sequences, expected_scores, what: str, hint: str = REORDER_HINT) -> None:
    __tracebackhide__ = True
    sequences, scores = actual
    check_tensor(sequences, expected_sequences, kata=KATA, what=f"sequences of {what}", axes="returned total_len", hint=hint)
    check_tensor(scores, expected_scores, kata=KATA, what=f"scores of {what}", axes="returned", atol=1e-4, rtol=1e-4, hint=hint)


@pytest.mark.parametrize("case", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in CASES])
def test_equals_uncached_beam_search(case, device):
    number = CASES.index(case)
    seed, num_beams = number % 3, 2 + number % 3
    returned = 1 + number % num_beams
    model = reference_gpt2(CFG, seed, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=seed + 10, device=device)
    options = {key: value for key, value in case.items() if key != "eos"}
    options["eos_token_id"] = likely_eos(model(prompt)) if case["eos"] == "likely" else None
    options.update(num_beams=num_beams, max_new_tokens=8, num_return_sequences=returned)
    actual = beam_search_with_cache(model, prompt, **options)
    check_search(actual, *uncached_beam_search(model, prompt, **options), what=f"cached beam search with {options}")


# Found by search: cases where the early_stopping=False rule decides the result (stopping a step
# early or late changes the beams), and where an n-gram size of 1 does (no token twice).
HEURISTIC_CASES = [(0, 2, dict(length_penalty=2.0, early_stopping=False, no_repeat_ngram_size=0)),
                   (3, 3, dict(length_penalty=1.0, early_stopping=False, no_repeat_ngram_size=0)),
                   (0, 2, dict(length_penalty=1.0, early_stopping=False, no_repeat_ngram_size=1))]


@pytest.mark.parametrize("seed, num_beams, case", HEURISTIC_CASES, ids=["length_penalty=2", "length_penalty=1", "ngram=1"])
def test_when_to_stop_and_single_token_bans_equal_uncached_beam_search(seed, num_beams, case, device):
    model = reference_gpt2(CFG, seed, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=seed + 10, device=device)
    options = dict(case, eos_token_id=likely_eos(model(prompt)), num_beams=num_beams, max_new_tokens=8)
    check_search(beam_search_with_cache(model, prompt, **options), *uncached_beam_search(model, prompt, **options),
                 what=f"cached beam search with {options}",
                 hint=f"{STOP_HINT} no_repeat_ngram_size=1 bans every token already in the row.")


@pytest.mark.parametrize("num_beams", [2, 4])
def test_equals_hugging_face(num_beams, device):
    model, hf = reference_gpt2(CFG, 1, str(device)), hf_gpt2(CFG, 1, str(device))
    prompt = random_tokens(2, 4, CFG.d_vocab, seed=3, device=device)
    eos = likely_eos(model(prompt))
    actual = beam_search_with_cache(model, prompt, num_beams=num_beams, max_new_tokens=10, eos_token_id=eos, num_return_sequences=num_beams)
    expected = hf_generate(hf, prompt, num_beams=num_beams, max_new_tokens=10, do_sample=False, eos_token_id=eos, use_cache=True,
                           num_return_sequences=num_beams, output_scores=True, return_dict_in_generate=True)
    check_search(actual, expected.sequences, expected.sequences_scores, what=f"cached beam search ({num_beams} beams) vs Hugging Face's")


def test_prefill_once_then_one_token_per_beam_per_step(device):
    model = reference_gpt2(CFG, 2, str(device))
    prompt = random_tokens(1, 5, CFG.d_vocab, seed=4, device=device)
    with PositionCounter(model) as counter:
        beam_search_with_cache(model, prompt, num_beams=3, max_new_tokens=6)
    expected = [5] + [1] * 5
    assert counter.calls == expected, (
        f"positions run through the model at each step: expected {expected} (the prompt once, then each beam's last "
        f"token), got {counter.calls}. The cache, reordered, holds the rest.")


def test_too_long_for_the_context_is_an_error_before_searching(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(1, 30, CFG.d_vocab, seed=5, device=device)
    with PositionCounter(model) as counter, pytest.raises(ValueError):
        beam_search_with_cache(model, prompt, num_beams=2, max_new_tokens=3)
    assert counter.calls == [], "raise the ValueError before running the model at all"


def test_the_edges_of_what_fits_are_searched(device):
    """A prompt and its new tokens that exactly fill the context, and a vocabulary of exactly 2 * num_beams
    tokens (each step takes 2 * num_beams candidates), are both enough: neither is refused."""
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(1, CFG.n_ctx - 2, CFG.d_vocab, seed=5, device=device)
    try:
        sequences, _ = beam_search_with_cache(model, prompt, num_beams=2, max_new_tokens=2)
        assert sequences.shape[1] == CFG.n_ctx, f"prompt_len + max_new_tokens == n_ctx fits exactly.\n{stuck(KATA)}"
        beam_search_with_cache(model, prompt[:, :3], num_beams=CFG.d_vocab // 2, max_new_tokens=2)
    except ValueError as error:
        pytest.fail(f"refused what fits: {error}. The context is full at prompt_len + max_new_tokens == n_ctx (refuse only "
                    f"past it: >), and {CFG.d_vocab // 2} beams need {CFG.d_vocab} tokens, which the vocabulary has.\n"
                    f"{stuck(KATA)}", pytrace=False)


def test_a_float64_model_searches_as_it_does_uncached(device):
    """The cache takes the model's dtype: a float32 cache under a float64 model cannot be read by its attention."""
    model = reference("model.gpt2")(CFG)
    model.load_state_dict(reference_gpt2(CFG, 3, "cpu").state_dict())
    model = model.to(device=device, dtype=torch.float64).eval()
    prompt = random_tokens(2, 4, CFG.d_vocab, seed=13, device=device)
    options = dict(num_beams=3, max_new_tokens=6, eos_token_id=likely_eos(model(prompt)))
    check_search(beam_search_with_cache(model, prompt, **options), *uncached_beam_search(model, prompt, **options),
                 "cached beam search of a float64 model vs parts.beam_search")


def test_a_bfloat16_model_is_searched_in_float32(device):
    """Log-probabilities in float32 whatever the model's dtype (parts.beam_search's docstring): a bfloat16
    log-softmax keeps 3 digits and ranks other candidates. Against the reference's cached search, which
    rounds the model's bfloat16 steps as any cached search does."""
    model = copy.deepcopy(reference_gpt2(CFG, 1, str(device))).to(torch.bfloat16)  # cached: never convert it in place
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=11, device=device)
    options = dict(num_beams=3, max_new_tokens=6, eos_token_id=likely_eos(model(prompt).float()), num_return_sequences=2)
    check_search(beam_search_with_cache(model, prompt, **options), *reference(KATA)(model, prompt, **options),
                 "cached beam search of a bfloat16 model", hint="Take the log-probabilities in float32: .float().log_softmax(-1).")


def test_the_context_error_is_the_message_of_every_generation_function(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(1, 30, CFG.d_vocab, seed=5, device=device)
    check_refused_up_front(lambda: beam_search_with_cache(model, prompt, num_beams=2, max_new_tokens=3), model, 30, 3,
                           kata=KATA, what="beam_search_with_cache with 30 prompt tokens and max_new_tokens=3")


@pytest.mark.parametrize("options", [dict(num_beams=2, num_return_sequences=3), dict(num_beams=CFG.d_vocab // 2 + 1)], ids=str)
def test_what_beam_search_refuses_is_refused(options, device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(1, 3, CFG.d_vocab, seed=5, device=device)
    with pytest.raises(ValueError, match="num_"):
        beam_search_with_cache(model, prompt, max_new_tokens=3, **options)


@pytest.mark.parametrize("length_penalty", [2.0, 1.0, -1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_early_stopping_never_equals_uncached_beam_search(length_penalty, seed, device):
    model = reference_gpt2(CFG, seed, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=seed + 10, device=device)
    options = dict(num_beams=2 + seed % 2, max_new_tokens=8, num_return_sequences=2, early_stopping="never",
                   length_penalty=length_penalty, eos_token_id=likely_eos(model(prompt)))
    check_search(beam_search_with_cache(model, prompt, **options), *uncached_beam_search(model, prompt, **options),
                 what=f"cached beam search with {options}")


@pytest.mark.parametrize("early_stopping", [True, False, "never"])
@pytest.mark.parametrize("kinds", [1, 3])
def test_exact_ties_are_broken_as_parts_beam_search_breaks_them(kinds, early_stopping, device):
    """Twin tokens make exact ties. The cached path rounds differently from the uncached one (other matmul
    shapes), so it is compared with the reference's cached search: same cache, same topk calls, same order."""
    model = reference_gpt2_with_ties(CFG, kinds, kinds, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=kinds + 20, device=device)
    num_beams = 4 if kinds == 1 else 3  # four beams on one logit value: the pool's slots tie with its candidates
    options = dict(num_beams=num_beams, max_new_tokens=6, eos_token_id=0, early_stopping=early_stopping,
                   num_return_sequences=num_beams)
    hint = ("Exact ties: where scores are equal, the order is torch.topk's. Give pool.add all 2 * num_beams candidates, in "
            "beam_step's order, and return pool.best(num_return_sequences) as it orders them (no sort).")
    check_search(beam_search_with_cache(model, prompt, **options), *reference(KATA)(model, prompt, **options),
                 what=f"cached beam search with exact ties ({kinds} distinct logits, {options})", hint=hint)


META_CASES = [dict(),
              dict(eos_token_id=5, num_return_sequences=2)]


@pytest.mark.parametrize("options", META_CASES, ids=["no eos", "eos"])
def test_makes_every_tensor_on_the_prompts_device(options):
    """On the meta device (no GPU needed) the search runs until it needs values (which beams ended): a
    tensor made on the CPU before then (a rank mask, a pool of scores) fails there, on every machine."""
    check_loop_on_meta(lambda model, prompt: beam_search_with_cache(model, prompt, num_beams=2, max_new_tokens=3, **options),
                       CFG, kata=KATA, what=f"cached beam search with {options}")


def test_makes_its_cache_on_the_models_device(monkeypatch):
    """The model on the meta device: every parts.KVCache must be made there too (a cache made without
    device= is on the CPU, which a GPU run would refuse to mix with the model's keys)."""
    check_caches_on_meta(monkeypatch, lambda model, prompt: beam_search_with_cache(model, prompt, num_beams=2, max_new_tokens=3),
                         CFG, kata=KATA, what="cached beam search on the meta device")


@pytest.mark.parametrize("early_stopping", [False, "never"])
def test_one_beam_is_greedy_search_ended_by_its_eos_as_hugging_face_does(early_stopping, device):
    """With num_beams=1 Hugging Face runs greedy search: the first EOS ends the sequence (beam search's docstring)."""
    for seed in range(6):
        model, hf = reference_gpt2(CFG, seed % 3, str(device)), hf_gpt2(CFG, seed % 3, str(device))
        prompt = random_tokens(1, 3, CFG.d_vocab, seed=seed, device=device)
        options = dict(num_beams=1, max_new_tokens=8, eos_token_id=likely_eos(model(prompt)), early_stopping=early_stopping,
                       length_penalty=2.0)
        sequences, _ = beam_search_with_cache(model, prompt, **options)
        check_tensor(sequences, hf_generate(hf, prompt, do_sample=False, **options), kata=KATA,
                     what=f"the sequence of a one-beam cached search ({options}, prompt seed {seed})", axes="returned total_len",
                     hint="With one beam, the first finished sequence ends the search, whatever early_stopping says. " + STOP_HINT)


def test_when_every_continuation_is_banned_the_prompt_comes_back_as_hugging_face_returns_it(device):
    cfg = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=4, n_ctx=32)
    model, hf = reference_gpt2(cfg, 0, str(device)), hf_gpt2(cfg, 0, str(device))
    prompt = torch.tensor([[0, 1, 2, 3, 0, 1, 2]], device=device)
    options = dict(num_beams=2, max_new_tokens=4, no_repeat_ngram_size=1, num_return_sequences=2)
    expected = hf_generate(hf, prompt, do_sample=False, output_scores=True, return_dict_in_generate=True, **options)
    check_search(beam_search_with_cache(model, prompt, **options), expected.sequences, expected.sequences_scores,
                 what="cached beam search when every continuation is banned",
                 hint="When nothing could finish, the pool's empty slots hold the prompt, at -1e9: return "
                 "pool.best(num_return_sequences) whatever it holds.")


# Found by search: on a peaked model (its embedding, tied to the unembedding, scaled up) the stopping
# rules with length_penalty <= 0 decide the beams; on random tiny models they never do.
PEAKED_CASES = [(0, 4.0, -1.0, "never", 2, 10), (1, 4.0, -1.0, "never", 4, 6), (0, 4.0, 0.0, False, 2, 8), (0, 8.0, -1.0, False, 3, 8)]


@pytest.mark.parametrize("seed, scale, length_penalty, early_stopping, num_beams, max_new_tokens", PEAKED_CASES)
def test_the_stopping_rules_with_a_length_penalty_of_zero_or_less_equal_uncached_search_on_a_peaked_model(
        seed, scale, length_penalty, early_stopping, num_beams, max_new_tokens, device):
    model = copy.deepcopy(reference_gpt2(CFG, seed, str(device)))  # reference_gpt2 is cached: never change it in place
    with torch.no_grad():
        model.embed.W_E.mul_(scale)
        model.unembed.W_U.mul_(scale)
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=seed + 5, device=device)
    options = dict(num_beams=num_beams, max_new_tokens=max_new_tokens, eos_token_id=likely_eos(model(prompt)),
                   early_stopping=early_stopping, length_penalty=length_penalty, num_return_sequences=num_beams)
    check_search(beam_search_with_cache(model, prompt, **options), *uncached_beam_search(model, prompt, **options),
                 what=f"cached beam search on a peaked model with {options}",
                 hint=STOP_HINT)
