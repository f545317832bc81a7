"""The trained induction model (harness/induction.py, harness/models/induction.safetensors): it is what
its seeded script makes, its heads are what the interpretability suites say, and `kata explore
--detectors` draws them. With GPT-2's real weights on this machine (never downloaded here), the
detector also names the induction heads the literature reports for GPT-2 small."""
import os

import pytest
import torch
from safetensors.torch import load_file

from harness import induction, loader, manifest
from harness.__main__ import main
from harness.commands import explore
from harness.testing.interp import INDUCTION_HEADS, PREVIOUS_TOKEN_HEADS, induction_model, repeated

detector_scores = loader.load_reference(manifest.get("interp.head_detectors"))
heads_above = loader.load_reference(manifest.get("interp.heads_above"))


@pytest.mark.slow
def test_the_shipped_model_is_what_the_seeded_script_trains():
    """Retrained from scratch (about 30 s): the same weights, to float tolerance (one thread, the same
    seeds; another CPU may round differently), and the same heads."""
    model, log = induction.train_induction_model()
    shipped = load_file(str(induction.PATH))
    differences = {name: (tensor - shipped[name]).abs().max().item() for name, tensor in model.state_dict().items()}
    worst = max(differences, key=differences.get)
    assert differences[worst] < 1e-3, (
        f"retraining gives other weights than harness/models/induction.safetensors ({worst} differs by {differences[worst]:.2e}): "
        "if the training changed on purpose, run python -m harness.induction and commit the file")
    tokens = repeated(8, seed=0)
    assert torch.allclose(detector_scores(model, tokens), detector_scores(induction_model(), tokens), atol=1e-3)
    assert log.eval_losses[induction.STEPS] < 2.4  # knowing nothing: log(64) = 4.16; perfect play about 2.15


def test_the_shipped_model_has_the_heads_the_suites_name():
    scores = detector_scores(induction_model(), repeated(8, seed=1))
    assert sorted(heads_above(scores[0], 0.4)) == [f"{layer}.{head}" for layer, head in PREVIOUS_TOKEN_HEADS]
    assert sorted(heads_above(scores[2], 0.4)) == [f"{layer}.{head}" for layer, head in INDUCTION_HEADS]
    assert not heads_above(scores[1], 0.4), "no duplicate-token head was trained"


def test_kata_explore_detectors_prints_and_draws_the_heads(tmp_path, capsys):
    assert main(["explore", "--detectors", "--reference", "--checkpoint", str(induction.PATH), "--png", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "induction scores" in out and "above 0.4: 1." in out, out
    image = tmp_path / "detectors.png"
    assert image.is_file() and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explore_scores_come_from_repeated_tokens_in_the_models_vocabulary():
    model = induction_model()
    scores = explore.detector_scores(model, batch=4, seed=3)
    assert scores.shape == (3, model.cfg.n_layers, model.cfg.n_heads)
    assert torch.allclose(scores, detector_scores(model, repeated(4, seed=3)), atol=1e-6)


GPT2_SMALL_INDUCTION_HEADS = {"5.1", "5.5", "6.9", "7.2", "7.10"}  # Olsson et al. 2022; ARENA's chapter 1.2


@pytest.mark.skipif(not os.environ.get("KATA_GPT2_WEIGHTS"),
                    reason="optional: set KATA_GPT2_WEIGHTS to GPT-2 small's weights (a save_pretrained folder, or 'gpt2' "
                    "in the local Hugging Face cache); tests never download")
def test_the_detector_names_gpt2_smalls_known_induction_heads():
    from harness.commands import demo

    hf = demo.hf_pretrained(os.environ["KATA_GPT2_WEIGHTS"])
    model = loader.load_reference(manifest.get("model.gpt2"))(demo.config_of(hf.config))
    loader.load_reference(manifest.get("model.load_gpt2_weights"))(model, hf.state_dict())
    model.eval()
    tokens = induction.repeated_tokens(4, 0, half=50, d_vocab=model.cfg.d_vocab)
    with torch.no_grad():
        named = set(heads_above(detector_scores(model, tokens)[2], 0.4))
    assert GPT2_SMALL_INDUCTION_HEADS <= named, f"induction heads named: {sorted(named)}"
