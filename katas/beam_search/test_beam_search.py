"""Tests for katas/beam_search/beam_search.py (beam_search), against Hugging Face's generate(num_beams=k)."""
import copy
import itertools

import pytest
import torch
from torch import Tensor

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_tensor
from harness.testing.context import check_refused_up_front
from harness.testing.data import random_tokens
from harness.testing.dtypes import check_loop_on_meta
from harness.testing.oracles import hf_as_model, hf_generate, hf_gpt2, hf_gpt2_with_ties, likely_eos, reference_gpt2
from harness.testing.recorders import SearchRecorder, where_searches_part

KATA = "beam_search.beam_search"
beam_search = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=32)
LENGTH_HINT = ("The pool compares finished sequences by their sum of log-probs / (generated tokens, EOS included, prompt "
               "excluded) ** length_penalty: normalise the candidates' scores so before pool.add.")
STOP_HINT = "After every step, ask the pool: pool.is_done(scores[0], tokens generated so far), with the best live beam's raw sum."
CASES = [
    dict(eos=eos, length_penalty=penalty, early_stopping=early, no_repeat_ngram_size=ngram)
    for eos, penalty, early, ngram in itertools.product(["none", "likely"], [0.0, 1.0, 2.0], [True, False], [0, 2])
]


def searched(hf, prompt: Tensor, expected, **options):
    """The search under test on Hugging Face's model; where its result is not `expected` (generate()'s),
    also in words where it parted from the reference's search (step by step, the beams each fed the
    model), for the failure messages. A right result needs no words: the reference is not run."""
    mine = SearchRecorder(hf_as_model(hf))
    actual = beam_search(mine, prompt, **options)
    if equals_hugging_face(actual, expected):
        return actual, ""
    theirs = SearchRecorder(hf_as_model(hf))
    reference(KATA)(theirs, prompt, **options)
    return actual, where_searches_part(mine.calls, theirs.calls, prompt.shape[1])


def equals_hugging_face(actual, expected) -> bool:
    """The checks below would pass: the same sequences, and scores within their tolerance."""
    try:
        sequences, scores = actual
        return (sequences.shape == expected.sequences.shape and bool((sequences == expected.sequences).all())
                and scores.shape == expected.sequences_scores.shape
                and torch.allclose(scores, expected.sequences_scores, atol=1e-4, rtol=1e-4))
    except (TypeError, ValueError, AttributeError, RuntimeError):  # not two tensors: the checks say what is wrong
        return False


def both_searches(case: dict, seed: int, num_beams: int, returned: int, device):
    hf = hf_gpt2(CFG, seed, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=seed + 10, device=device)
    options = {key: value for key, value in case.items() if key != "eos"}
    options["eos_token_id"] = likely_eos(hf(prompt).logits) if case["eos"] == "likely" else None
    expected = hf_generate(hf, prompt, num_beams=num_beams, max_new_tokens=8, do_sample=False, num_return_sequences=returned,
                           output_scores=True, return_dict_in_generate=True, **options)
    actual, where = searched(hf, prompt, expected, num_beams=num_beams, max_new_tokens=8, num_return_sequences=returned,
                             **options)
    return actual, expected, options, where


@pytest.mark.parametrize("case", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in CASES])
def test_sequences_and_scores_equal_hugging_face(case, device):
    number = CASES.index(case)
    seed, num_beams = number % 3, 2 + number % 3
    returned = 1 + number % num_beams
    (sequences, scores), expected, options, where = both_searches(case, seed, num_beams, returned, device)
    what = f"beam search ({num_beams} beams, {returned} returned, {options})"
    check_tensor(sequences, expected.sequences, kata=KATA, what=f"sequences of {what}", axes="returned total_len",
                 hint=where)
    check_tensor(scores, expected.sequences_scores, kata=KATA, what=f"scores of {what}", axes="returned", atol=1e-4, rtol=1e-4,
                 hint=f"{where} {LENGTH_HINT}")


class ScriptedModel:
    """A fake model whose next-token probabilities depend only on the step: A, B and EOS (= 2), and a
    fourth token that is never likely (2 beams need a vocabulary of 4)."""

    STEPS = {1: [0.6, 0.1, 0.3, 1e-9], 2: [0.1, 0.1, 0.8, 1e-9]}  # after these: [0.9, 0.05, 0.05, 1e-9]

    def __call__(self, tokens):
        probs = torch.tensor(self.STEPS.get(tokens.shape[1], [0.9, 0.05, 0.05, 1e-9]), device=tokens.device)
        return probs.log().expand(tokens.shape[0], tokens.shape[1], 4)


def test_a_full_pool_stops_the_search_with_early_stopping(device):
    """Step 1 finishes [EOS]; step 2 finishes [A, EOS] and [B, EOS]. The pool holds num_beams = 2, so it
    keeps the two best, is full, and with early_stopping=True the search stops there."""
    prompt = torch.zeros(1, 1, dtype=torch.long, device=device)
    sequences, scores = beam_search(ScriptedModel(), prompt, num_beams=2, max_new_tokens=5, eos_token_id=2,
                                    length_penalty=2.0, early_stopping=True, num_return_sequences=2)
    log = torch.log(torch.tensor([0.6, 0.8, 0.1]))
    expected_scores = torch.stack([(log[0] + log[1]) / 4, (log[2] + log[1]) / 4])
    check_tensor(sequences, torch.tensor([[0, 0, 2], [0, 1, 2]], device=device), kata=KATA,
                 what="sequences of the scripted search", axes="returned total_len",
                 hint="The pool keeps the best num_beams finished sequences; with early_stopping=True a full pool ends the "
                 "search. " + STOP_HINT)
    check_tensor(scores.cpu(), expected_scores, kata=KATA, what="scores of the scripted search", axes="returned")


@pytest.mark.parametrize("prompt_len, new", [(30, 3), (CFG.n_ctx, 1)])
def test_past_the_context_of_a_gpt2_is_refused_up_front(prompt_len, new, device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(1, prompt_len, CFG.d_vocab, seed=5, device=device)
    check_refused_up_front(lambda: beam_search(model, prompt, num_beams=2, max_new_tokens=new), model, prompt_len, new,
                           kata=KATA, what=f"beam_search with {prompt_len} prompt tokens and max_new_tokens={new}")
    prompt = random_tokens(1, CFG.n_ctx - 2, CFG.d_vocab, seed=5, device=device)
    sequences, _ = beam_search(model, prompt, num_beams=2, max_new_tokens=2)
    assert sequences.shape[1] == CFG.n_ctx, "prompt_len + max_new_tokens == n_ctx fits exactly"


def test_more_returned_sequences_than_beams_is_refused_as_by_hugging_face(device):
    hf = hf_gpt2(CFG, 0, str(device))
    prompt = torch.tensor([[1, 2, 3]], device=device)
    with pytest.raises(ValueError):
        hf_generate(hf, prompt, num_beams=2, num_return_sequences=3, max_new_tokens=3, eos_token_id=CFG.d_vocab - 1)
    with pytest.raises(ValueError, match="num_return_sequences"):
        beam_search(hf_as_model(hf), prompt, num_beams=2, num_return_sequences=3, max_new_tokens=3)


class TwoTokenModel:
    """Hugging Face's own counter-example: a vocabulary of 2 tokens."""

    def __call__(self, tokens):
        return torch.tensor([0.3, -0.2], device=tokens.device).expand(tokens.shape[0], tokens.shape[1], 2)


@pytest.mark.parametrize("num_beams, vocabulary_fits", [(4, False), (2, False), (1, True)])
def test_beams_need_a_vocabulary_of_twice_their_number(num_beams, vocabulary_fits, device):
    prompt = torch.zeros(1, 1, dtype=torch.long, device=device)
    run = lambda: beam_search(TwoTokenModel(), prompt, num_beams=num_beams, max_new_tokens=3, eos_token_id=0,  # noqa: E731
                              early_stopping=True)
    if vocabulary_fits:
        run()
    else:
        with pytest.raises(ValueError, match="num_beams"):
            run()


NEVER_CASES = [dict(eos="likely", length_penalty=penalty, early_stopping="never", no_repeat_ngram_size=0)
               for penalty in (2.0, 1.0, 0.0, -1.0)]


@pytest.mark.parametrize("case", NEVER_CASES, ids=[f"length_penalty={c['length_penalty']}" for c in NEVER_CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_early_stopping_never_equals_hugging_face(case, seed, device):
    (sequences, scores), expected, options, where = both_searches(case, seed, 2 + seed % 2, 2, device)
    hint = f"{where} {STOP_HINT}"
    check_tensor(sequences, expected.sequences, kata=KATA, what=f"sequences of beam search with {options}",
                 axes="returned total_len", hint=hint)
    check_tensor(scores, expected.sequences_scores, kata=KATA, what=f"scores of beam search with {options}", axes="returned",
                 atol=1e-4, rtol=1e-4, hint=hint)


# Found by search: cases where the early_stopping=False rule decides the result (stopping a step
# early or late changes the beams), and where an n-gram size of 1 does (no token twice).
HEURISTIC_CASES = [(0, 2, dict(eos="likely", length_penalty=2.0, early_stopping=False, no_repeat_ngram_size=0)),
                   (3, 3, dict(eos="likely", length_penalty=1.0, early_stopping=False, no_repeat_ngram_size=0)),
                   (0, 2, dict(eos="likely", length_penalty=1.0, early_stopping=False, no_repeat_ngram_size=1))]


@pytest.mark.parametrize("seed, num_beams, case", HEURISTIC_CASES, ids=["length_penalty=2", "length_penalty=1", "ngram=1"])
def test_when_to_stop_and_single_token_bans_equal_hugging_face(seed, num_beams, case, device):
    (sequences, scores), expected, options, where = both_searches(case, seed, num_beams, 1, device)
    hint = f"{where} {STOP_HINT} no_repeat_ngram_size=1 bans every token already in the row."
    check_tensor(sequences, expected.sequences, kata=KATA, what=f"sequences of beam search with {options}",
                 axes="returned total_len", hint=hint)
    check_tensor(scores, expected.sequences_scores, kata=KATA, what=f"scores of beam search with {options}", axes="returned",
                 atol=1e-4, rtol=1e-4, hint=hint)


def test_the_oracle_cases_do_end_beams_with_eos(device):
    """Guards the suite itself: with the chosen EOS, Hugging Face's returned beams do end early."""
    early = 0
    for case in CASES:
        if case["eos"] == "likely":
            _, expected, options, _ = both_searches(case, CASES.index(case) % 3, 3, 3, device)
            early += int((expected.sequences[:, 3:] == options["eos_token_id"]).any(dim=1).sum())
    assert early >= 20, f"only {early} returned sequences end with EOS: the oracle cases no longer test EOS"


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
def test_a_model_of_another_dtype_is_searched_in_float32_as_hugging_face_does(dtype, device):
    """The docstring: log-probabilities in float32 whatever the model's dtype; the scores come back float32.
    (bfloat16 log-probabilities round to 3 digits: the search would rank other candidates.)"""
    hf = copy.deepcopy(hf_gpt2(CFG, 1, str(device))).to(dtype)  # hf_gpt2 is cached: never convert it in place
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=11, device=device)
    options = dict(num_beams=3, max_new_tokens=6, eos_token_id=likely_eos(hf(prompt).logits.float()), num_return_sequences=2)
    expected = hf_generate(hf, prompt, do_sample=False, output_scores=True, return_dict_in_generate=True, **options)
    sequences, scores = beam_search(hf_as_model(hf), prompt, **options)
    check_tensor(sequences, expected.sequences, kata=KATA, what=f"sequences of a {dtype} model's beam search",
                 axes="returned total_len", hint="Take the log-probabilities in float32: .float().log_softmax(-1).")
    check_tensor(scores, expected.sequences_scores.float(), kata=KATA, what=f"scores of a {dtype} model's beam search",
                 axes="returned", atol=1e-4, rtol=1e-4, hint="Take the log-probabilities in float32: .float().log_softmax(-1).")


TIE_CASES = [dict(kinds=kinds, eos_token_id=eos, early_stopping=early)
             for kinds, eos, early in itertools.product([1, 3], [None, 0], [True, False, "never"])]
TIE_HINT = ("Exact ties: where scores are equal, Hugging Face's order is torch.topk's. Give pool.add all 2 * num_beams "
            "candidates, in beam_step's order, and return pool.best(num_return_sequences) as it orders them (no sort).")


@pytest.mark.parametrize("case", TIE_CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in TIE_CASES])
def test_exact_ties_are_broken_as_hugging_face_breaks_them(case, device):
    """Twin tokens (same embedding, so same logits) make many candidates and finished sequences score alike.
    One prompt per case: Hugging Face runs a batch's prompts through one matmul, whose last bits depend
    on the row, so only a lone prompt's scores are bit for bit the ones this search computes."""
    number = TIE_CASES.index(case)
    options = dict(num_beams=[4, 3, 2][number % 3], max_new_tokens=6, eos_token_id=case["eos_token_id"],
                   early_stopping=case["early_stopping"], length_penalty=[1.0, 0.0, 2.0][number % 3])
    options["num_return_sequences"] = options["num_beams"]
    hf = hf_gpt2_with_ties(CFG, number % 3, case["kinds"], str(device))
    prompt = random_tokens(1, 2 + number % 3, CFG.d_vocab, seed=number, device=device)
    expected = hf_generate(hf, prompt, do_sample=False, output_scores=True, return_dict_in_generate=True, **options)
    sequences, scores = beam_search(hf_as_model(hf), prompt, **options)
    what = f"beam search with exact ties ({case['kinds']} distinct logits, {options})"
    check_tensor(sequences, expected.sequences, kata=KATA, what=f"sequences of {what}", axes="returned total_len", hint=TIE_HINT)
    check_tensor(scores, expected.sequences_scores, kata=KATA, what=f"scores of {what}", axes="returned", atol=1e-4, rtol=1e-4,
                 hint=TIE_HINT)


META_CASES = [dict(),
              dict(eos_token_id=5, num_return_sequences=2)]


@pytest.mark.parametrize("options", META_CASES, ids=["no eos", "eos"])
def test_makes_every_tensor_on_the_prompts_device(options):
    """On the meta device (no GPU needed) the search runs until it needs values (which beams ended): a
    tensor made on the CPU before then (a rank mask, a pool of scores) fails there, on every machine."""
    check_loop_on_meta(lambda model, prompt: beam_search(model, prompt, num_beams=2, max_new_tokens=3, **options),
                       CFG, kata=KATA, what=f"beam search with {options}")


@pytest.mark.parametrize("length_penalty", [0.5, 2.0])
@pytest.mark.parametrize("early_stopping", [False, "never"])
def test_one_beam_is_greedy_search_ended_by_its_eos_as_hugging_face_does(early_stopping, length_penalty, device):
    """With num_beams=1 Hugging Face runs greedy search: the first EOS ends the sequence. "never" with a positive
    length penalty would otherwise keep the one live beam going, looking for a longer sequence that scores better."""
    for seed in range(6):
        hf = hf_gpt2(CFG, seed % 3, str(device))
        prompt = random_tokens(1, 3, CFG.d_vocab, seed=seed, device=device)
        options = dict(num_beams=1, max_new_tokens=8, eos_token_id=likely_eos(hf(prompt).logits), early_stopping=early_stopping,
                       length_penalty=length_penalty)
        expected = hf_generate(hf, prompt, do_sample=False, **options)
        sequences, _ = beam_search(hf_as_model(hf), prompt, **options)
        check_tensor(sequences, expected, kata=KATA, what=f"the sequence of a one-beam search ({options}, prompt seed {seed})",
                     axes="returned total_len",
                     hint="With one beam, the first finished sequence ends the search, whatever early_stopping says. " + STOP_HINT)


def test_when_every_continuation_is_banned_the_prompt_comes_back_as_hugging_face_returns_it(device):
    """A 4-token vocabulary, a prompt holding all four, no_repeat_ngram_size=1: no token may follow, nothing ever
    finishes. Hugging Face returns the prompt, scored -1e9 (its empty slots); so does the search."""
    cfg = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=4, n_ctx=32)
    hf = hf_gpt2(cfg, 0, str(device))
    prompt = torch.tensor([[0, 1, 2, 3, 0, 1, 2]], device=device)
    options = dict(num_beams=2, max_new_tokens=4, no_repeat_ngram_size=1, num_return_sequences=2)
    expected = hf_generate(hf, prompt, do_sample=False, output_scores=True, return_dict_in_generate=True, **options)
    sequences, scores = beam_search(hf_as_model(hf), prompt, **options)
    hint = ("When nothing could finish, the pool's empty slots hold the prompt, at -1e9: return pool.best(num_return_sequences) "
            "whatever it holds.")
    check_tensor(sequences, expected.sequences, kata=KATA, what="the sequences when every continuation is banned",
                 axes="returned total_len", hint=hint)
    check_tensor(scores, expected.sequences_scores, kata=KATA, what="the scores when every continuation is banned", axes="returned",
                 hint=hint)


# Found by search: on a peaked model (its embedding, tied to the unembedding, scaled up) the stopping
# rules with length_penalty <= 0 decide the beams; on random tiny models they never do.
PEAKED_CASES = [(0, 4.0, -1.0, "never", 2, 10), (1, 4.0, -1.0, "never", 4, 6), (0, 4.0, 0.0, False, 2, 8), (0, 8.0, -1.0, False, 3, 8)]


def peaked_hf_gpt2(seed: int, scale: float, device):
    hf = copy.deepcopy(hf_gpt2(CFG, seed, str(device)))  # hf_gpt2 is cached: never change it in place
    with torch.no_grad():
        hf.transformer.wte.weight.mul_(scale)
    return hf


@pytest.mark.parametrize("seed, scale, length_penalty, early_stopping, num_beams, max_new_tokens", PEAKED_CASES)
def test_the_stopping_rules_with_a_length_penalty_of_zero_or_less_equal_hugging_face_on_a_peaked_model(
        seed, scale, length_penalty, early_stopping, num_beams, max_new_tokens, device):
    hf = peaked_hf_gpt2(seed, scale, device)
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=seed + 5, device=device)
    options = dict(num_beams=num_beams, max_new_tokens=max_new_tokens, eos_token_id=likely_eos(hf(prompt).logits),
                   early_stopping=early_stopping, length_penalty=length_penalty, num_return_sequences=num_beams)
    expected = hf_generate(hf, prompt, do_sample=False, output_scores=True, return_dict_in_generate=True, **options)
    stopped_at_once = hf_generate(hf, prompt, do_sample=False, **{**options, "early_stopping": True})
    assert stopped_at_once.shape != expected.sequences.shape or not torch.equal(stopped_at_once, expected.sequences), (
        "this case no longer tells the stopping rules apart: pick another (the suite's own guard)")
    (sequences, scores), where = searched(hf, prompt, expected, **options)
    hint = f"{where} {STOP_HINT}"
    what = f"beam search on a peaked model with {options}"
    check_tensor(sequences, expected.sequences, kata=KATA, what=f"sequences of {what}", axes="returned total_len", hint=hint)
    check_tensor(scores, expected.sequences_scores, kata=KATA, what=f"scores of {what}", axes="returned", atol=1e-4, rtol=1e-4, hint=hint)
