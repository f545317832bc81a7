"""`python -m harness train`: files written, a checkpoint that loads, and data-parallel training under
torchrun that gives the weights of one process on the same global batches."""
import json
import os
import random
import socket
import subprocess
import sys

import pytest
import torch

from harness import manifest, parts
from harness.__main__ import main
from harness.checkpoint import load_checkpoint, read_config
from harness.commands import train as training
from harness.config import Config

TINY = ["--d-model", "8", "--n-layers", "1", "--n-heads", "2", "--n-ctx", "16", "--batch-size", "2", "--lr", "1e-2",
        "--eval-every", "2", "--eval-fraction", "0.1", "--seed", "3", "--threads", "1", "--quiet"]
WORDS = "the a model learns to predict next token from every window of text and its loss goes down".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A folder of two small text files (about 1,500 tokens)."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    for name in ("one.txt", "two.txt"):
        (folder / name).write_text(" ".join(rng.choice(WORDS) for _ in range(700)), encoding="utf-8")
    (folder / "binary.bin").write_bytes(bytes(range(256)))  # not UTF-8: skipped
    return folder


def test_read_documents_skips_what_is_not_text_and_stops_at_max_chars(corpus):
    documents = training.read_documents(corpus, max_chars=5000)
    assert len(documents) == 2 and sum(map(len, documents)) == 5000
    assert training.read_documents(None, max_chars=3000)[0].strip(), "the standard library's sources are the default corpus"


def test_split_windows_holds_out_the_end_of_the_corpus():
    tokens = torch.arange(1000)
    train_windows, eval_windows = training.split_windows(tokens, 16, 0.1)
    assert train_windows.max() < 900 <= eval_windows.min() and eval_windows.max() == 999 and train_windows.min() == 0


def test_train_writes_a_checkpoint_a_plot_and_the_losses(corpus, tmp_path):
    assert main(["train", "--data", str(corpus), "--steps", "3", "--out", str(tmp_path), *TINY]) == 0
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    losses = json.loads((tmp_path / "losses.json").read_text())
    assert len(losses["train_losses"]) == 3 and list(losses["eval_losses"]) == ["0", "2", "3"]
    assert losses["eval_losses"]["0"] > losses["eval_losses"]["3"] - 1, "step 0: the held-out loss before training"
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [sample["step"] for sample in samples] == [0] * 3 + [2] * 3 + [3] * 3
    assert all(sample["prompt"] and set(sample) == {"step", "held_out_loss", "prompt", "completion"} for sample in samples)
    assert samples[0]["held_out_loss"] == losses["eval_losses"]["0"]
    assert read_config(tmp_path / "model.safetensors") == Config(d_model=8, n_heads=2, n_layers=1, d_vocab=50257, n_ctx=16)
    model = load_checkpoint(tmp_path / "model.safetensors")
    with torch.no_grad():
        assert model(torch.tensor([[15496, 995]])).shape == (1, 2, 50257)


def test_the_plot_smooths_over_a_tenth_of_the_run_and_counts_processes_in_words():
    assert [training.smoothing_window(steps) for steps in (3, 9, 10, 60, 300, 2000, 50_000)] == [0, 0, 5, 6, 30, 100, 100]
    assert training.moving_average([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3) == [2.0, 3.0, 4.0, 5.0]
    assert training.processes(1) == "1 process" and training.processes(2) == "2 processes"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_process_on_the_same_global_batches(corpus, steps: int, batch_size: int, world: int, seed: int):
    """What `train` does under torchrun, done by hand in this process: the same initial weights,
    and at each step one batch made of every process's batch, through the reference train_step."""
    tokens = training.tokenize(training.read_documents(corpus, max_chars=1_000_000))
    train_windows, _ = training.split_windows(tokens, 16, 0.1)
    epochs = []
    for rank in range(world):
        share = training.shard(train_windows, rank, world)
        assert steps * batch_size <= len(share), "the test wants full batches from the first epoch only"
        epochs.append(parts.shuffled_batches(share, batch_size, torch.Generator().manual_seed(seed)))
    torch.manual_seed(seed)
    model = parts.GPT2(Config(d_model=8, n_heads=2, n_layers=1, d_vocab=50257, n_ctx=16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    losses = [parts.train_step(model, optimizer, torch.cat([epoch[step] for epoch in epochs])).item() for step in range(steps)]
    return model, losses


@pytest.mark.slow
def test_torchrun_with_two_processes_equals_one_process_on_the_global_batch(corpus, tmp_path):
    steps = 4
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}",
               "-m", "harness", "train", "--data", str(corpus), "--steps", str(steps), "--out", str(tmp_path), "--device", "cpu", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, cwd=manifest.ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    losses = json.loads((tmp_path / "losses.json").read_text())
    assert losses["processes"] == 2

    expected_model, expected_losses = one_process_on_the_same_global_batches(corpus, steps, 2, 2, seed=3)
    # Each process's loss is the mean over its batch; their mean is the loss of the global batch.
    torch.testing.assert_close(torch.tensor(losses["train_losses"]), torch.tensor(expected_losses), atol=1e-5, rtol=1e-5)
    trained = load_checkpoint(tmp_path / "model.safetensors").state_dict()
    for name, value in expected_model.state_dict().items():
        torch.testing.assert_close(trained[name], value, atol=1e-5, rtol=1e-4, msg=lambda details, name=name: f"{name}: {details}")
    torch.manual_seed(3)
    untrained = parts.GPT2(Config(d_model=8, n_heads=2, n_layers=1, d_vocab=50257, n_ctx=16)).state_dict()
    moved = max((trained[name] - value).abs().max().item() for name, value in untrained.items())
    assert moved > 1e-3, "the weights hardly moved: the comparison above would prove nothing"
