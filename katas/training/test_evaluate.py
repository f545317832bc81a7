"""Tests for katas/training/evaluate.py (evaluate)."""
import pytest
import torch

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.data import random_tokens
from harness.testing.oracles import tiny_language_model
from harness.testing.recorders import ModeRecorder
from harness.testing.strategies import NAMED_CONFIGS

KATA = "training.evaluate"
evaluate = under_test(KATA)
CFG = NAMED_CONFIGS["many_heads"]


def held_out(device, n_windows=5):
    return random_tokens(n_windows, 8, CFG.d_vocab, seed=11, device=device)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8])
def test_is_the_mean_loss_over_every_window(batch_size, device):
    model, windows = tiny_language_model(CFG, 0, device), held_out(device)
    with torch.no_grad():
        expected = reference("training.cross_entropy_loss")(model(windows), windows)
    loss = evaluate(model, windows, batch_size)
    assert isinstance(loss, float), f"evaluate returns a Python float (loss.item()), got {type(loss).__name__}.\n{stuck(KATA)}"
    check_tensor(torch.tensor(loss, device=device), expected, kata=KATA,
                 what=f"the held-out loss of 5 windows in batches of {batch_size}", atol=1e-5, rtol=1e-5,
                 hint="Weight each batch's loss by its number of windows: the last batch may be smaller.")


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_runs_in_eval_mode_without_autograd_and_restores_the_mode(mode, device):
    model = ModeRecorder(tiny_language_model(CFG, 0, device)).train(mode == "train")
    evaluate(model, held_out(device), 2)
    assert model.calls, f"evaluate never called the model.\n{stuck(KATA)}"
    assert not any(call.training for call in model.calls), (
        f"the model ran in training mode during evaluation: call model.eval() first (dropout must be off).\n{stuck(KATA)}"
    )
    assert not any(call.grad_enabled for call in model.calls), (
        f"autograd was recording during evaluation: run the model inside `with torch.no_grad():`.\n{stuck(KATA)}"
    )
    assert model.training == (mode == "train"), (
        f"the model arrived in {mode} mode and left in {'train' if model.training else 'eval'} mode: give it back its mode "
        f"(model.train(was_training)), or training goes on in eval mode.\n{stuck(KATA)}"
    )


def test_changes_no_parameter_and_leaves_no_gradient(device):
    model = tiny_language_model(CFG, 0, device)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    evaluate(model, held_out(device), 2)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), f"evaluate changed the parameter {name}.\n{stuck(KATA)}"
    assert all(param.grad is None for param in model.parameters()), f"evaluate left gradients in .grad: no backward() here.\n{stuck(KATA)}"


def test_a_float64_model_is_evaluated_in_float64(device):
    model, windows = tiny_language_model(CFG, 0, device).double(), held_out(device)
    with torch.no_grad():
        expected = reference("training.cross_entropy_loss")(model(windows), windows)
    loss = evaluate(model, windows, 2)
    assert isinstance(loss, float), f"evaluate returns a Python float (loss.item()), got {type(loss).__name__}.\n{stuck(KATA)}"
    check_tensor(torch.tensor(loss, dtype=torch.float64, device=device), expected, kata=KATA,
                 what="the held-out loss of a float64 model", atol=1e-9, rtol=1e-9,
                 hint="Sum the batches' losses as Python floats (loss.item()) or in the model's dtype: a float32 total "
                 "rounds a float64 model's loss.")
