"""Tests for katas/training/train.py (train): the loop, and a small model that learns with it."""
import math

import pytest
import torch

from harness import parts
from harness.config import Config
from harness.testing import as_the_kata_sees, reference, stuck, under_test
from harness.testing.data import random_tokens
from harness.testing.oracles import tiny_language_model
from harness.testing.recorders import ModeRecorder

KATA = "training.train"
train = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=1, d_vocab=13, n_ctx=6)


def windows(n_windows, seed, device="cpu"):
    return random_tokens(n_windows, CFG.n_ctx, CFG.d_vocab, seed=seed, device=device)


def run(trainer, device, steps=7, seed=0, recorder=False, model_seed=0, **options):
    """Train a fresh tiny model: 10 training windows (3 batches of 4, the last of 2), 3 held-out windows."""
    model = tiny_language_model(CFG, model_seed, device)
    model = ModeRecorder(model) if recorder else model
    options = {"batch_size": 4, "lr": 1e-2, "weight_decay": 0.1, "eval_every": 3, **options}
    log = trainer(model, windows(10, 1), windows(3, 2), steps=steps, seed=seed, **options)
    return model, log


def test_matches_the_reference_loop(device):
    _, log = run(train, device)
    _, expected = run(reference(KATA), device)
    assert len(log.train_losses) == len(expected.train_losses), (
        f"{len(log.train_losses)} training losses for {len(expected.train_losses)} steps: one per step.\n{stuck(KATA)}"
    )
    for step, (mine, theirs) in enumerate(zip(log.train_losses, expected.train_losses), start=1):
        assert math.isclose(mine, theirs, rel_tol=1e-4, abs_tol=1e-5), (
            f"step {step}: training loss {mine:.6f}, the reference's {theirs:.6f}. One AdamW(lr, weight_decay) for the whole run, "
            f"one generator seeded once, a new parts.shuffled_batches epoch when one runs out.\n{stuck(KATA)}"
        )
    assert log.eval_losses.keys() == expected.eval_losses.keys(), (
        f"held-out losses after steps {sorted(log.eval_losses)}; expected after {sorted(expected.eval_losses)} "
        f"(every eval_every steps, and after the last).\n{stuck(KATA)}"
    )
    for step, loss in expected.eval_losses.items():
        assert math.isclose(log.eval_losses[step], loss, rel_tol=1e-4, abs_tol=1e-5), (
            f"held-out loss after step {step}: {log.eval_losses[step]:.6f}, the reference's {loss:.6f}.\n{stuck(KATA)}"
        )


@pytest.mark.parametrize("steps", [1, 3, 5, 7])  # 3 batches per epoch: within one epoch, at its end, across epochs
def test_does_exactly_steps_steps(steps, device):
    model, log = run(train, device, steps=steps, recorder=True)
    training_calls = [call for call in model.calls if call.grad_enabled]
    assert len(training_calls) == steps and len(log.train_losses) == steps, (
        f"asked for {steps} steps; the model trained on {len(training_calls)} batches and the log has "
        f"{len(log.train_losses)} losses. Count the steps done, and stop at `steps`, even in mid-epoch.\n{stuck(KATA)}"
    )


def test_trains_in_training_mode_even_when_the_model_arrives_in_eval_mode(device):
    model = ModeRecorder(tiny_language_model(CFG, 0, device)).eval()
    train(model, windows(10, 1), windows(3, 2), steps=7, batch_size=4, eval_every=3)
    modes = ["train" if call.training else "eval" for call in model.calls if call.grad_enabled]
    assert modes and all(mode == "train" for mode in modes), (
        f"training steps ran in these modes: {modes}. Call model.train() before training "
        f"(a loaded checkpoint arrives in eval mode).\n{stuck(KATA)}"
    )


def test_calls_on_step_after_every_step(device):
    seen = []
    _, log = run(train, device, steps=5, on_step=lambda log: seen.append((len(log.train_losses), dict(log.eval_losses))))
    assert [count for count, _ in seen] == [1, 2, 3, 4, 5], (
        f"on_step should be called once after each step, with the log so far; it saw these step counts: "
        f"{[count for count, _ in seen]}.\n{stuck(KATA)}"
    )
    assert seen[2][1].keys() == {3}, f"after step 3 (eval_every=3), on_step should see the held-out loss of step 3.\n{stuck(KATA)}"


def test_the_same_seed_gives_the_same_losses(device):
    _, first = run(train, device, seed=3)
    _, second = run(train, device, seed=3)
    _, other = run(train, device, seed=4)
    assert first.train_losses == second.train_losses, f"two runs with seed 3 gave different losses.\n{stuck(KATA)}"
    assert first.train_losses != other.train_losses, f"seeds 3 and 4 gave the same losses: the seed should drive the shuffle.\n{stuck(KATA)}"


def test_batches_go_to_the_device_of_the_model(monkeypatch):
    """The windows stay on the CPU and the model's parameters are on the `meta` device (shapes only): every
    batch that parts.train_step and parts.evaluate receive must be on the model's device. They are stand-ins
    here that only record the device, since nothing can be computed on `meta`; a CPU-only run of the other
    tests cannot see a missing .to(device), as everything there is on one device. Isolated (as `kata grade`
    runs it), the stand-ins replace the worker's parts and are called back here."""
    seen = []

    def train_step(model, optimizer, batch):
        seen.append(("parts.train_step", batch.device.type))
        return torch.tensor(1.0)

    def evaluate(model, windows, batch_size):
        seen.append(("parts.evaluate", windows.device.type))
        return 1.0

    monkeypatch.setattr(as_the_kata_sees(KATA, parts), "train_step", train_step)
    monkeypatch.setattr(as_the_kata_sees(KATA, parts), "evaluate", evaluate)
    model = torch.nn.Linear(CFG.d_model, CFG.d_vocab, device="meta")
    train(model, windows(10, 1), windows(3, 2), steps=4, batch_size=4, eval_every=2)
    wrong = [(name, device) for name, device in seen if device != "meta"]
    assert seen and not wrong, (
        f"the model is on the meta device, the windows on the CPU; these calls got a batch on another device than the "
        f"model's: {wrong}. Move each batch, and the held-out windows, to next(model.parameters()).device.\n{stuck(KATA)}"
    )


# ---------------------------------------------------------------- a model that learns

# The task: L random tokens, then the same L tokens again. The first half cannot be predicted;
# the second half can, by looking back (an induction head). Perfect play scores about
# (L - 1) / (2 L - 1) * log(d_vocab) = 1.29 nats; a model that knows nothing log(16) = 2.77.
INDUCTION = Config(d_model=32, n_heads=2, n_layers=2, d_vocab=16, n_ctx=16)
INDUCTION_STEPS, INDUCTION_BOUND = 120, 1.5


def repeated_sequences(n_sequences, seed):
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, INDUCTION.d_vocab, (n_sequences, INDUCTION.n_ctx // 2), generator=generator)
    return torch.cat([first, first], dim=1)


@pytest.fixture
def one_thread():
    """Small matrices are much faster on one thread than on two busy ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_small_model_learns_to_repeat_a_sequence(device, one_thread):
    torch.manual_seed(0)
    model = reference("model.gpt2")(INDUCTION).to(device)
    log = train(model, repeated_sequences(2000, 1), repeated_sequences(64, 2), steps=INDUCTION_STEPS, batch_size=16,
                lr=1e-2, eval_every=60, seed=0)
    final = log.eval_losses.get(INDUCTION_STEPS, math.inf)
    assert final < INDUCTION_BOUND, (
        f"after {INDUCTION_STEPS} steps the held-out loss is {final:.3f}, above {INDUCTION_BOUND} "
        f"(a model that knows nothing scores {math.log(INDUCTION.d_vocab):.2f}; the reference loop gets below 1.35). "
        f"Training losses: first {log.train_losses[:1]}, last {log.train_losses[-1:]}.\n{stuck(KATA)}"
    )
