"""Tests for katas/interp/head_detectors.py (detector_scores)."""
import pytest
import torch

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.dtypes import check_function_on_meta
from harness.testing.interp import CFG, INDUCTION_HEADS, PREVIOUS_TOKEN_HEADS, check_model_unchanged, hf_twin, induction_model, random_model, repeated

KATA = "interp.head_detectors"
detector_scores = under_test(KATA)
DETECTORS = ("previous-token", "duplicate-token", "induction")
OFFSETS = {"previous-token": "query - 1", "duplicate-token": "query - half", "induction": "query - half + 1"}


def scores_from(patterns: list, half: int) -> torch.Tensor:
    """The independent computation, spelled out position by position from (batch, head, query, key) patterns."""
    n_layers, (batch, n_heads, pos, _) = len(patterns), patterns[0].shape
    scores = torch.zeros(3, n_layers, n_heads, dtype=patterns[0].dtype)
    for layer, pattern in enumerate(patterns):
        for head in range(n_heads):
            scores[0, layer, head] = sum(pattern[b, head, q, q - 1] for b in range(batch) for q in range(1, pos)) / (batch * (pos - 1))
            second_half = [(b, q) for b in range(batch) for q in range(half, pos)]
            scores[1, layer, head] = sum(pattern[b, head, q, q - half] for b, q in second_half) / len(second_half)
            scores[2, layer, head] = sum(pattern[b, head, q, q - half + 1] for b, q in second_half) / len(second_half)
    return scores


def known_mistakes(patterns: list, half: int) -> list:
    """Each detector's diagonal taken one off, or averaged over every query."""
    stacked = torch.stack(patterns, dim=1)  # batch layer head query key
    def diagonal(offset, queries):
        return stacked.diagonal(offset=offset, dim1=-2, dim2=-1)[..., queries].mean(dim=(0, -1))
    return [
        (diagonal(-half, slice(None)), "The duplicate-token score looks half positions back: key = query - half."),
        (diagonal(-(half + 1), slice(None)), "The induction head attends to the token *after* the earlier copy: key = query - half + 1."),
    ]


@pytest.mark.parametrize("half", [3, 6])
def test_shape_and_dtype(half, device):
    model = random_model(0, device)
    tokens = repeated(2, seed=half, half=half, d_vocab=CFG.d_vocab, device=device)
    check_shape(detector_scores(model, tokens), (3, CFG.n_layers, CFG.n_heads), torch.float32, kata=KATA, what="the detector scores",
                axes="detector layer head", device=tokens.device,
                hint="Three detectors (previous-token, duplicate-token, induction), then a score per layer and head.")


@pytest.mark.parametrize("seed, half", [(1, 4), (2, 7)])
def test_matches_scores_computed_from_hugging_faces_attentions(seed, half, device):
    """The independent computation: Hugging Face's output_attentions, averaged position by position."""
    model, hf = random_model(seed, device), hf_twin(seed, device)
    tokens = repeated(2, seed=seed, half=half, d_vocab=CFG.d_vocab, device=device)
    with torch.no_grad():
        patterns = [pattern.cpu() for pattern in hf(tokens, output_attentions=True).attentions]
    expected = scores_from(patterns, half)
    actual = detector_scores(model, tokens)
    check_shape(actual, tuple(expected.shape), expected.dtype, kata=KATA, what="the detector scores", axes="detector layer head")
    for index, name in enumerate(DETECTORS):
        check_tensor(actual[index].cpu(), expected[index], kata=KATA, what=f"each head's {name} score", axes="layer head", atol=1e-5,
                     hint=diagnose(actual[index].cpu(), known_mistakes(patterns, half),
                                   f"The {name} score is the mean attention from a query to the key at {OFFSETS[name]}"
                                   + (", over every query that has one." if index == 0 else ", over the second half's queries.")))


def test_finds_the_induction_models_heads(device):
    model = induction_model(device)
    scores = detector_scores(model, repeated(8, seed=8, device=device))
    check_tensor(scores, reference(KATA)(model, repeated(8, seed=8, device=device)), kata=KATA,
                 what="the detector scores of the induction model", axes="detector layer head", atol=1e-5,
                 hint="Previous-token: key = query - 1; duplicate: query - half; induction: query - half + 1.")
    for index, heads in ((0, PREVIOUS_TOKEN_HEADS), (2, INDUCTION_HEADS)):
        found = [(layer, head) for layer, head in heads if scores[index, layer, head] > 0.5]
        assert found == heads, f"{DETECTORS[index]} heads found: {found}; the trained model has {heads}"


def test_keeps_the_dtype_of_the_model(device):
    model = random_model(3, device, torch.float64)
    tokens = repeated(2, seed=3, half=5, d_vocab=CFG.d_vocab, device=device)
    check_tensor(detector_scores(model, tokens), reference(KATA)(model, tokens), kata=KATA, what="the detector scores of a float64 model",
                 axes="detector layer head", atol=1e-9, rtol=1e-9,
                 hint="Average the patterns from the cache: never a new float32 tensor (torch.zeros(...) takes the dtype you give it).")


def test_leaves_the_model_unchanged(device):
    model = random_model(4, device)
    tokens = repeated(2, seed=4, half=4, d_vocab=CFG.d_vocab, device=device)
    check_model_unchanged(lambda: detector_scores(model, tokens), model, kata=KATA, what="detector_scores")


def test_creates_no_tensor_on_another_device():
    model = random_model(5).to("meta")
    tokens = repeated(2, seed=5, half=4, d_vocab=CFG.d_vocab)
    check_function_on_meta(detector_scores, reference(KATA), model, tokens, kata=KATA, what="the detector scores")
