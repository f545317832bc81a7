"""Tests for katas/training/train_step.py (train_step)."""
import copy

import pytest
import torch

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import random_tokens
from harness.testing.oracles import tiny_language_model
from harness.testing.strategies import NAMED_CONFIGS

KATA = "training.train_step"
train_step = under_test(KATA)
CFG = NAMED_CONFIGS["many_heads"]
OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.1),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1),
}


def twins(optimizer_name, device):
    """Two identical (model, optimizer) pairs: one for the code under test, one for the reference."""
    model = tiny_language_model(CFG, 0, device)
    twin = copy.deepcopy(model)
    return (model, OPTIMIZERS[optimizer_name](model.parameters())), (twin, OPTIMIZERS[optimizer_name](twin.parameters()))


def batch(seed, device):
    return random_tokens(3, 8, CFG.d_vocab, seed=seed, device=device)


def check_same_parameters(actual, expected, what):
    __tracebackhide__ = True
    expected_parameters = dict(expected.named_parameters())
    for name, value in actual.named_parameters():
        check_tensor(value.detach(), expected_parameters[name].detach(), kata=KATA, what=f"{what}: parameter {name}",
                     atol=1e-6, rtol=1e-5, hint="forward, loss, backward(), optimizer.step(), optimizer.zero_grad(): in this order.")


def test_returns_the_loss_before_the_step_as_a_detached_scalar(device):
    (model, optimizer), (twin, _) = twins("sgd", device)
    tokens = batch(1, device)
    with torch.no_grad():
        expected = reference("training.cross_entropy_loss")(twin(tokens), tokens)
    loss = train_step(model, optimizer, tokens)
    check_shape(loss, (), torch.float32, kata=KATA, what="the returned loss", device=device)
    assert not loss.requires_grad, f"Return loss.detach(): a loss that keeps its graph keeps the whole step in memory.\n{stuck(KATA)}"
    check_tensor(loss, expected, kata=KATA, what="the returned loss (of the model before the step)", atol=1e-5,
                 hint="The loss of the batch is parts.cross_entropy_loss(model(tokens), tokens).")


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
def test_one_step_moves_the_parameters_as_the_reference_does(optimizer_name, device):
    (model, optimizer), (twin, twin_optimizer) = twins(optimizer_name, device)
    tokens = batch(1, device)
    train_step(model, optimizer, tokens)
    reference(KATA)(twin, twin_optimizer, tokens)
    assert not all(torch.equal(a, b) for a, b in zip(model.parameters(), tiny_language_model(CFG, 0, device).parameters())), (
        f"The parameters did not change: call loss.backward() before optimizer.step().\n{stuck(KATA)}"
    )
    check_same_parameters(model, twin, f"after one step with {optimizer_name}")


def test_sgd_step_is_minus_lr_times_the_gradient(device):
    (model, optimizer), (twin, _) = twins("sgd", device)
    tokens = batch(1, device)
    reference("training.cross_entropy_loss")(twin(tokens), tokens).backward()
    train_step(model, optimizer, tokens)
    for (name, value), before in zip(model.named_parameters(), twin.parameters()):
        check_tensor(value.detach(), (before - 0.1 * before.grad).detach(), kata=KATA, what=f"parameter {name} after an SGD step",
                     atol=1e-6, rtol=1e-5, hint="The gradient is that of this batch's loss only.")


def test_leaves_the_gradients_zeroed(device):
    (model, optimizer), _ = twins("adamw", device)
    train_step(model, optimizer, batch(1, device))
    for name, param in model.named_parameters():
        assert param.grad is None or not param.grad.any(), (
            f"{name}.grad is not zero after the step: call optimizer.zero_grad() after optimizer.step(), "
            f"or the next step adds its gradient to this one.\n{stuck(KATA)}"
        )


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
def test_three_steps_match_the_reference(optimizer_name, device):
    (model, optimizer), (twin, twin_optimizer) = twins(optimizer_name, device)
    for seed in range(3):
        mine = train_step(model, optimizer, batch(seed, device))
        theirs = reference(KATA)(twin, twin_optimizer, batch(seed, device))
        check_tensor(mine, theirs, kata=KATA, what=f"the loss of step {seed + 1}", atol=1e-5,
                     hint="Each step's gradient must be its own batch's: gradients accumulate until zeroed.")
    check_same_parameters(model, twin, f"after three steps with {optimizer_name}")


def test_a_float64_model_trains_in_float64(device):
    (model, optimizer), (twin, twin_optimizer) = twins("adamw", device)
    model.double(), twin.double()
    tokens = batch(4, device)
    loss = train_step(model, optimizer, tokens)
    expected = reference(KATA)(twin, twin_optimizer, tokens)
    check_tensor(loss, expected, kata=KATA, what="the loss of a float64 model", atol=1e-9, rtol=1e-9,
                 hint="Keep the model's dtype: no .float() on the logits or the loss.")
    check_same_parameters(model, twin, "after one step of a float64 model")
