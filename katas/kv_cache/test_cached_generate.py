"""Tests for katas/kv_cache/cached_generate.py (generate_with_cache): the tokens of parts.generate and of
Hugging Face's generate(), one forward pass over the prompt and then one token per step, and the speedup."""
import time

import jaxtyping
import pytest
import torch

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_tensor
from harness.testing.context import check_refused_up_front, eos_zero_is_reached
from harness.testing.data import random_tokens
from harness.testing.dtypes import check_caches_on_meta, check_loop_on_meta
from harness.testing.oracles import hf_generate, hf_generate_banning_ngrams, hf_gpt2, reference_gpt2
from harness.testing.properties import check_inputs_unchanged
from harness.testing.recorders import PositionCounter

KATA = "kv_cache.cached_generate"
generate_with_cache = under_test(KATA)
uncached_generate = reference("sampling.generate")
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=40)
EOS = CFG.d_vocab - 1
SAMPLING = [dict(top_k=0), dict(temperature=0.7, top_k=6, top_p=0.9, repetition_penalty=1.3), dict(top_k=0, frequency_penalty=0.5)]


@pytest.mark.parametrize("eos", [None, EOS])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_uncached_generation_and_hugging_face(seed, eos, device):
    model = reference_gpt2(CFG, seed, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=seed + 10, device=device)
    tokens = generate_with_cache(model, prompt, 14, eos_token_id=eos, do_sample=False)
    hint = "Feed the whole prompt first, then only the last chosen token; finished rows get eos appended."
    check_tensor(tokens, uncached_generate(model, prompt, 14, eos_token_id=eos, do_sample=False), kata=KATA,
                 what="cached greedy generation vs parts.generate (no cache)", axes="batch total_len", hint=hint)
    hf = hf_gpt2(CFG, seed, str(device))
    check_tensor(tokens, hf_generate(hf, prompt, max_new_tokens=14, do_sample=False, eos_token_id=eos, use_cache=True),
                 kata=KATA, what="cached greedy generation vs Hugging Face's generate(do_sample=False)", axes="batch total_len", hint=hint)


# eos=0 where id 0 is drawn at all (top_k=6 leaves it out of these draws)
SAMPLED_ENDS = [(options, EOS) for options in SAMPLING] + [(SAMPLING[0], 0), (SAMPLING[2], 0)]


@pytest.mark.parametrize("options, eos", SAMPLED_ENDS, ids=[f"{options}-eos={eos}" for options, eos in SAMPLED_ENDS])
def test_sampling_with_the_same_seed_equals_uncached_generation(options, eos, device):
    model = reference_gpt2(CFG, 1, str(device))
    prompt = random_tokens(4, 3, CFG.d_vocab, seed=21, device=device)
    torch.manual_seed(5)
    expected = uncached_generate(model, prompt, 15, eos_token_id=eos, do_sample=True, **options)
    if eos == 0:
        eos_zero_is_reached(expected, prompt.shape[1])
    torch.manual_seed(5)
    actual = generate_with_cache(model, prompt, 15, eos_token_id=eos, do_sample=True, **options)
    check_tensor(actual, expected, kata=KATA, what=f"cached sampled generation with {options} and eos_token_id={eos}",
                 axes="batch total_len",
                 hint="Pass every option through to parts.sample_next_token, with the whole sequence so far (the prompt "
                 "too) as its tokens: the penalties count them." + (" And test `eos_token_id is not None`: 0 is a real id."
                                                                   if eos == 0 else ""))


@pytest.mark.parametrize("batch, prompt_len, new", [(1, 5, 6), (3, 2, 9)])
def test_prefill_once_then_one_token_per_step(batch, prompt_len, new, device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(batch, prompt_len, CFG.d_vocab, seed=3, device=device)
    with PositionCounter(model) as counter:
        generate_with_cache(model, prompt, new, do_sample=False)
    expected = [prompt_len] + [1] * (new - 1)
    assert counter.calls == expected, (
        f"positions run through the model at each step: expected {expected} (the prompt once, then one token), "
        f"got {counter.calls}. The cache holds the rest: feed it only what it has not seen.")


def test_too_long_for_the_context_is_an_error_before_generating(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(2, 30, CFG.d_vocab, seed=4, device=device)
    with PositionCounter(model) as counter, pytest.raises(ValueError):
        generate_with_cache(model, prompt, CFG.n_ctx - 30 + 1, do_sample=False)
    assert counter.calls == [], "raise the ValueError before running the model at all"
    tokens = generate_with_cache(model, prompt, CFG.n_ctx - 30, do_sample=False)
    assert tokens.shape[1] == CFG.n_ctx, "prompt_len + max_new_tokens == n_ctx fits exactly"


def test_the_context_error_is_the_message_of_every_generation_function(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(2, 30, CFG.d_vocab, seed=4, device=device)
    check_refused_up_front(lambda: generate_with_cache(model, prompt, 11, do_sample=False), model, 30, 11, kata=KATA,
                           what="generate_with_cache with 30 prompt tokens and max_new_tokens=11")


def test_leaves_the_prompt_unchanged(device):
    model = reference_gpt2(CFG, 0, str(device))
    check_inputs_unchanged(lambda p: generate_with_cache(model, p, 3, do_sample=False),
                           random_tokens(2, 5, CFG.d_vocab, seed=6, device=device), kata=KATA, what="generate_with_cache")


# ---------------------------------------------------------------- parts.generate's options: eos lists, pad, num_return_sequences, n-grams

ENDS = [dict(eos_token_id=[EOS, 2, 5], pad_token_id=0), dict(eos_token_id=[3, 7, EOS]), dict(eos_token_id=4, pad_token_id=0)]
ENDS_HINT = "Any id of an eos list ends a row (torch.isin); a finished row gets pad_token_id, or the first eos id without one."


def check_as_generate_and_hugging_face(actual, hf_tokens, seed: int, model, prompt, new: int, what: str, hint: str, **options):
    """actual against Hugging Face's tokens and parts.generate's (no cache, after torch.manual_seed(seed))."""
    check_tensor(actual, hf_tokens, kata=KATA, what=f"{what} vs Hugging Face's generate()", axes="returned total_len", hint=hint)
    torch.manual_seed(seed)
    expected = uncached_generate(model, prompt, new, **options)
    check_tensor(actual, expected, kata=KATA, what=f"{what} vs parts.generate (no cache)", axes="returned total_len", hint=hint)


def hf_tokens(hf, prompt, new: int, seed: int, **options):
    """Hugging Face's generate() with its cache, after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return hf_generate(hf, prompt, max_new_tokens=new, use_cache=True, **options)


@pytest.mark.parametrize("do_sample", [False, True], ids=["greedy", "sampled"])
@pytest.mark.parametrize("ends", ENDS, ids=["eos list and pad", "eos list", "eos and pad"])
def test_a_list_of_eos_ids_and_a_pad_id_as_generate_and_hugging_face(ends, do_sample, device):
    model, hf = reference_gpt2(CFG, 2, str(device)), hf_gpt2(CFG, 2, str(device))
    prompt = random_tokens(4, 3, CFG.d_vocab, seed=31, device=device)
    options = dict(do_sample=do_sample, top_k=0, **ends)
    torch.manual_seed(6)
    actual = generate_with_cache(model, prompt, 12, **options)
    check_as_generate_and_hugging_face(actual, hf_tokens(hf, prompt, 12, 6, **options), 6, model, prompt, 12,
                                       f"cached generation with {options}", ENDS_HINT, **options)


def test_num_return_sequences_as_generate_and_hugging_face(device):
    """Without do_sample: sampling is the default, as in parts.generate, so num_return_sequences > 1 is allowed."""
    model, hf = reference_gpt2(CFG, 1, str(device)), hf_gpt2(CFG, 1, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=41, device=device)
    options = dict(top_k=0, eos_token_id=EOS, num_return_sequences=3)
    torch.manual_seed(8)
    actual = generate_with_cache(model, prompt, 10, **options)
    check_as_generate_and_hugging_face(actual, hf_tokens(hf, prompt, 10, 8, do_sample=True, **options), 8, model, prompt, 10,
                                       "cached generation with num_return_sequences=3",
                                       "Repeat each prompt row num_return_sequences times in a row (p0, p0, p0, p1, ...: "
                                       "repeat_interleave) before making the cache: it needs a row for each.", **options)


def test_num_return_sequences_without_sampling_is_refused_before_the_model_runs(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=50, device=device)
    with PositionCounter(model) as counter, pytest.raises(ValueError):
        generate_with_cache(model, prompt, 4, do_sample=False, num_return_sequences=2)
    assert counter.calls == [], ("num_return_sequences > 1 with do_sample=False would give identical rows: raise the "
                                 "ValueError before running the model at all, as parts.generate does")


NGRAM_CASES = [dict(do_sample=False), dict(do_sample=False, eos_token_id=[EOS, 2], pad_token_id=0),
               dict(do_sample=True, top_k=4, eos_token_id=EOS),
               dict(do_sample=True, temperature=0.7, top_k=6, top_p=0.9, repetition_penalty=1.3, eos_token_id=EOS, pad_token_id=0)]


@pytest.mark.parametrize("options", NGRAM_CASES, ids=[str(o) for o in NGRAM_CASES])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_size_as_generate_and_hugging_face(n, options, device):
    model, hf = reference_gpt2(CFG, n, str(device)), hf_gpt2(CFG, n, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=n + 60, device=device)
    new = 7 if n == 1 else 14  # n=1 bans every id already seen: 4 + 7 of the 12 ids leaves some to sample
    expected = hf_generate_banning_ngrams(hf, prompt, n, seed=n, max_new_tokens=new, use_cache=True, **options)
    torch.manual_seed(n)
    actual = generate_with_cache(model, prompt, new, no_repeat_ngram_size=n, **options)
    check_as_generate_and_hugging_face(actual, expected, n, model, prompt, new, f"cached generation with no_repeat_ngram_size={n} "
                                       f"and {options}", "Ban (parts.ban_repeated_ngrams) on the logits before choosing, with "
                                       "the whole sequence so far: the prompt too, not only the tokens fed to the model this step.",
                                       no_repeat_ngram_size=n, **options)


@pytest.mark.parametrize("do_sample", [False, True], ids=["greedy", "sampled"])
def test_no_repeat_ngram_size_zero_bans_nothing(do_sample, device):
    model, hf = reference_gpt2(CFG, 2, str(device)), hf_gpt2(CFG, 2, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=61, device=device)
    options = dict(do_sample=do_sample, top_k=0, eos_token_id=EOS)
    torch.manual_seed(4)
    actual = generate_with_cache(model, prompt, 12, no_repeat_ngram_size=0, **options)
    check_as_generate_and_hugging_face(actual, hf_tokens(hf, prompt, 12, 4, **options), 4, model, prompt, 12,
                                       "cached generation with no_repeat_ngram_size=0",
                                       "0 (the default) means no ban at all: ban only when no_repeat_ngram_size > 0.", **options)


# ---------------------------------------------------------------- the speedup, measured and reported (never a verdict)

BENCH_CFG = Config(d_model=128, n_heads=4, n_layers=4, d_vocab=256, n_ctx=128)
FEW, MANY = 8, 96  # new tokens after a 16-token prompt


def best_times(runs: int, *calls) -> list[float]:
    """The best time of each call over `runs` rounds, the calls taking turns within a round (so
    that a burst of load on a shared machine slows both sides of a ratio alike)."""
    for call in calls:
        call()  # warm-up
    best = [float("inf")] * len(calls)
    for _ in range(runs):
        for number, call in enumerate(calls):
            start = time.perf_counter()
            call()
            best[number] = min(best[number], time.perf_counter() - start)
    return best


def test_the_cache_speedup_is_measured_and_reported(benchmark, device):
    """A benchmark, not a verdict on time. Whether the cache is used is judged by counted work
    (test_prefill_once_then_one_token_per_step: the positions each forward call processes), which no
    machine, load or isolation changes. Here pytest-benchmark times the cached loop, and the speedup
    over parts.generate is measured side by side (one thread, type checks off, best of several rounds,
    the two taking turns) and reported in the benchmark's extra_info (--benchmark-json), with the
    positions each side ran through the model. Under --isolate the cached side also pays the wire's
    cost per model call, so its figure there is lower. The tokens are checked in every mode."""
    model = reference_gpt2(BENCH_CFG, 0, str(device))
    prompt = random_tokens(1, 16, BENCH_CFG.d_vocab, seed=8, device=device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        cached_tokens = benchmark.pedantic(generate_with_cache, args=(model, prompt, MANY), kwargs=dict(do_sample=False),
                                           rounds=3, warmup_rounds=1)
        speedup = {}
        if not benchmark.disabled:
            for new in (FEW, MANY):
                uncached_time, cached_time = best_times(
                    5 if new == FEW else 3,  # few tokens: quick runs, noisier
                    lambda new=new: uncached_generate(model, prompt, new, do_sample=False),
                    lambda new=new: generate_with_cache(model, prompt, new, do_sample=False),
                )
                speedup[new] = uncached_time / cached_time
        uncached_tokens = uncached_generate(model, prompt, MANY, do_sample=False)
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)
        torch.set_num_threads(threads)
    check_tensor(cached_tokens, uncached_tokens, kata=KATA, what="the benchmark's cached greedy tokens", axes="batch total_len")
    with PositionCounter(model) as cached_work:
        generate_with_cache(model, prompt, MANY, do_sample=False)
    with PositionCounter(model) as uncached_work:
        uncached_generate(model, prompt, MANY, do_sample=False)
    benchmark.extra_info.update({f"speedup_{new}_tokens": round(ratio, 2) for new, ratio in speedup.items()})
    benchmark.extra_info.update(positions_cached=sum(cached_work.calls), positions_uncached=sum(uncached_work.calls))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
def test_a_model_in_another_dtype_generates_as_it_does_uncached(dtype, device):
    """The cache takes the model's dtype: a float32 cache under a float64 or bfloat16 model cannot be
    read by its attention, or rounds its keys and values differently from the uncached loop."""
    model = reference("model.gpt2")(CFG)
    model.load_state_dict(reference_gpt2(CFG, 3, "cpu").state_dict())
    model = model.to(device=device, dtype=dtype).eval()
    prompt = random_tokens(2, 4, CFG.d_vocab, seed=13, device=device)
    check_tensor(generate_with_cache(model, prompt, 10, eos_token_id=EOS, do_sample=False),
                 uncached_generate(model, prompt, 10, eos_token_id=EOS, do_sample=False), kata=KATA,
                 what=f"cached greedy generation of a {dtype} model vs parts.generate", axes="batch total_len",
                 hint="Make the KVCache in the model's dtype and on its device (from next(model.parameters())).")


META_CASES = [dict(do_sample=False),
              dict(do_sample=False, eos_token_id=[EOS, 2], pad_token_id=0),
              dict(top_k=0, eos_token_id=EOS, pad_token_id=0, num_return_sequences=2)]


@pytest.mark.parametrize("options", META_CASES, ids=["greedy", "eos list and pad", "sampled, num_return_sequences"])
def test_makes_every_tensor_on_the_prompts_device(options):
    """On the meta device (no GPU needed) the loop runs until it needs to know which rows ended: an EOS
    tensor, a `finished` mask or a mask column made on the CPU fails there, on every machine."""
    check_loop_on_meta(lambda model, prompt: generate_with_cache(model, prompt, 4, **options),
                       CFG, kata=KATA, what=f"cached generation with {options}")


def test_makes_its_cache_on_the_models_device(monkeypatch):
    """The model on the meta device: every parts.KVCache must be made there too (a cache made without
    device= is on the CPU, which a GPU run would refuse to mix with the model's keys)."""
    check_caches_on_meta(monkeypatch, lambda model, prompt: generate_with_cache(model, prompt, 4, do_sample=False),
                         CFG, kata=KATA, what="cached generation on the meta device")
