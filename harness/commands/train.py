"""Train a small GPT-2 on text, on one process or many: `python -m harness train` (`kata train`).

The corpus is any text file or folder you name, or by default the Python standard library's
own source files (on every machine, no download). It is tokenized with GPT-2's tokenizer
(harness.text), one document after another with <|endoftext|> between them, cut into
windows (parts.make_windows), and its last part is held out for evaluation. The model is
parts.GPT2 and the loop is parts.train: the training katas, run for real (the reference
solutions, or with --mine the learner's own, from katas/).

Under torchrun every process runs this same file: torch.distributed starts (gloo on CPUs,
nccl on GPUs), the model is wrapped in DistributedDataParallel, and each process trains on
its own share of the windows; backward() averages the gradients, so one step of N processes
with batches of B is one step on a batch of N * B. The training loop does not change. Only
rank 0 shows the progress bar and writes the files:

    python -m harness train --steps 300
    torchrun --nproc_per_node=2 -m harness train --steps 300

Output (in --out): model.safetensors (harness.checkpoint; `kata demo --checkpoint` samples
from it), loss.png (the training and held-out losses, from a held-out point at step 0) and
losses.json (the same numbers). At step 0 and at every evaluation the model also continues the
first tokens of a few held-out windows (seeded sampling through parts.generate): shown under the
progress bar and appended to samples.jsonl, so that you see it learn.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import sysconfig
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import Config

if TYPE_CHECKING:  # torch is imported when a command runs, so that `python -m harness hint` stays quick
    import torch
    from torch import Tensor, nn

STDLIB = Path(sysconfig.get_paths()["stdlib"])


# ---------------------------------------------------------------- the corpus


def read_documents(path: "str | Path | None", max_chars: int) -> list[str]:
    """The texts of a file, of a folder's files (recursively), or of the standard library's
    top-level .py files; in sorted order, up to max_chars characters in all (the last one cut)."""
    if path is None:
        files = sorted(STDLIB.glob("*.py"))
    else:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
    documents, total = [], 0
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # not text: skip it
        if text.strip():
            documents.append(text[: max_chars - total])
            total += len(documents[-1])
        if total >= max_chars:
            break
    if not documents:
        raise ValueError(f"no UTF-8 text found in {path or STDLIB}")
    return documents


def tokenize(documents: list[str]) -> Tensor:
    """One long 1-D tensor of GPT-2 token ids: every document followed by <|endoftext|>."""
    import torch

    from harness.text import END_OF_TEXT, gpt2_tokenizer

    ids = []
    for encoded in gpt2_tokenizer()(documents)["input_ids"]:
        ids.extend(encoded)
        ids.append(END_OF_TEXT)
    return torch.tensor(ids, dtype=torch.long)


def split_windows(tokens: Tensor, n_ctx: int, eval_fraction: float) -> tuple[Tensor, Tensor]:
    """(training windows, held-out windows): the last eval_fraction of the tokens is held out."""
    from harness import parts

    n_eval = max(n_ctx, int(len(tokens) * eval_fraction))
    if len(tokens) - n_eval < n_ctx:
        raise ValueError(f"{len(tokens)} tokens are too few for windows of {n_ctx} tokens and a held-out part")
    return parts.make_windows(tokens[:-n_eval], n_ctx), parts.make_windows(tokens[-n_eval:], n_ctx)


# ---------------------------------------------------------------- one process or many


def start_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device). Under torchrun (WORLD_SIZE > 1), joins the
    process group: nccl with one GPU per process, gloo on CPUs. Alone, does nothing."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if world == 1 and not dist.is_initialized():
        return 0, 1, torch.device(device)
    if device == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), chosen


def shard(windows: Tensor, rank: int, world: int) -> Tensor:
    """This process's share: every world-th window from the rank-th, all shares the same size."""
    usable = len(windows) // world * world
    if usable == 0:
        raise ValueError(f"{len(windows)} windows cannot be shared among {world} processes")
    return windows[:usable][rank::world]


def fit(model: nn.Module, train_windows: Tensor, eval_windows: Tensor, *, steps: int, batch_size: int, lr: float,
        weight_decay: float, eval_every: int, seed: int, on_step=None):
    """parts.train on this process's share of the windows, data-parallel when torch.distributed
    is running (batch_size is per process). on_step(log, mean_loss) runs on every process with
    the last step's loss averaged over the processes."""
    import torch
    import torch.distributed as dist
    from torch import nn

    from harness import parts

    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    if world > 1:
        device = next(model.parameters()).device
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        train_windows = shard(train_windows, rank, world)

    def report(log):
        if on_step is None:
            return
        loss = torch.tensor(log.train_losses[-1], device=next(model.parameters()).device)
        if world > 1:
            dist.all_reduce(loss)
            loss /= world
        on_step(log, loss.item())

    return parts.train(model, train_windows, eval_windows, steps=steps, batch_size=batch_size, lr=lr,
                       weight_decay=weight_decay, eval_every=eval_every, seed=seed, on_step=report)


# ---------------------------------------------------------------- outputs


def processes(world: int) -> str:
    return f"{world} process" if world == 1 else f"{world} processes"


def smoothing_window(steps: int) -> int:
    """Steps per mean in the plot's moving average of the training loss: a tenth of the run,
    from 5 to 100 steps; 0 (no such line) when the run is shorter than two windows."""
    window = min(100, max(5, steps // 10))
    return window if steps >= 2 * window else 0


def moving_average(values: list[float], window: int) -> list[float]:
    """The mean of each `window` consecutive values (len(values) - window + 1 of them)."""
    import torch

    return torch.tensor(values, dtype=torch.float64).unfold(0, window, 1).mean(1).tolist()


SAMPLE_PROMPTS, SAMPLE_PROMPT_TOKENS, SAMPLE_NEW_TOKENS = 3, 8, 16


def sample_prompts(eval_windows: Tensor) -> Tensor:
    """The first tokens of a few held-out windows, spread over them: the same prompts at every evaluation."""
    import torch

    rows = torch.linspace(0, len(eval_windows) - 1, SAMPLE_PROMPTS).long().unique()
    return eval_windows[rows, : min(SAMPLE_PROMPT_TOKENS, eval_windows.shape[1] // 2)]


def sample_completions(model: nn.Module, prompts: Tensor, seed: int) -> list[dict]:
    """Each prompt and its seeded, sampled continuation (parts.generate), in eval mode; the mode is restored."""
    import torch

    from harness import parts
    from harness.text import END_OF_TEXT, decode

    was_training = model.training
    model.eval()
    generator = torch.Generator(device=prompts.device).manual_seed(seed)  # the same draws at every evaluation
    try:
        new = min(SAMPLE_NEW_TOKENS, model.cfg.n_ctx - prompts.shape[1])  # the whole sample fits in the context
        tokens = parts.generate(model, prompts, new, eos_token_id=END_OF_TEXT, do_sample=True, generator=generator)
    finally:
        model.train(was_training)
    return [{"prompt": decode(row[: prompts.shape[1]]), "completion": decode(row[prompts.shape[1]:][row[prompts.shape[1]:] != END_OF_TEXT])}
            for row in tokens]


def live_display(progress, view, console, hidden: bool):
    """The progress bar with the latest samples under it (nothing when hidden)."""
    import contextlib

    from rich.console import Group
    from rich.live import Live

    return contextlib.nullcontext() if hidden else Live(Group(progress, view), console=console, refresh_per_second=4)


class SamplesView:
    """The latest evaluation's samples, as a table under the progress bar."""

    def __init__(self):
        self.step, self.loss, self.samples = None, None, []

    def __rich__(self):
        from rich.table import Table

        if self.step is None:
            return ""
        table = Table(title=f"samples at step {self.step} (held-out loss {self.loss:.3f})", title_justify="left", expand=True)
        table.add_column("prompt (held-out text)", ratio=1, overflow="fold")
        table.add_column("the model's continuation", ratio=2, overflow="fold")
        for sample in self.samples:
            table.add_row(repr(sample["prompt"]), repr(sample["completion"]))
        return table


def plot_losses(train_losses: list[float], eval_losses: dict[int, float], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    steps = range(1, len(train_losses) + 1)
    axes.plot(steps, train_losses, lw=0.8, alpha=0.4, label="training loss (each batch)")
    window = smoothing_window(len(train_losses))
    if window:  # each mean at the middle of its steps, so that the line does not lag behind the loss
        smooth = moving_average(train_losses, window)
        middles = [first + (window - 1) / 2 for first in range(1, len(smooth) + 1)]
        axes.plot(middles, smooth, lw=1.5, label=f"training loss (moving average over {window} steps)")
    if eval_losses:
        axes.plot(list(eval_losses), list(eval_losses.values()), "o-", lw=1.5, label="held-out loss")
    axes.set(xlabel="step", ylabel="cross-entropy (nats per token)", title=title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


# ---------------------------------------------------------------- the command


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="PATH", help="a text file or a folder of them (default: the Python standard library's .py files)")
    data.add_argument("--max-chars", type=int, default=1_000_000, help="use at most this many characters of text (default 1000000)")
    data.add_argument("--eval-fraction", type=float, default=0.05, help="share of the tokens held out for evaluation (default 0.05)")
    data.add_argument("--eval-windows", type=int, default=64, help="evaluate on at most this many held-out windows, spread out (default 64)")
    model = parser.add_argument_group("model")
    model.add_argument("--d-model", type=int, default=128)
    model.add_argument("--n-layers", type=int, default=2)
    model.add_argument("--n-heads", type=int, default=4)
    model.add_argument("--n-ctx", type=int, default=64, help="tokens per window (default 64)")
    training = parser.add_argument_group("training")
    training.add_argument("--steps", type=int, default=300)
    training.add_argument("--batch-size", type=int, default=8, help="windows per step, per process (default 8)")
    training.add_argument("--lr", type=float, default=1e-3)
    training.add_argument("--weight-decay", type=float, default=0.01)
    training.add_argument("--eval-every", type=int, default=50)
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    training.add_argument("--threads", type=int, default=0, help="torch CPU threads per process (default: torch's choice)")
    parser.add_argument("--out", default="runs/train", help="folder for model.safetensors, loss.png, losses.json (default runs/train)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-samples", dest="samples", action="store_false",
                        help="do not sample completions at each evaluation (samples.jsonl stays empty)")
    parser.add_argument("--mine", action="store_true",
                        help="use your solutions in katas/ (model, windows, loss, loop) instead of the reference ones")
    return parser


def _configure(args: argparse.Namespace) -> bool:
    """Threads, whose code trains (--mine), and the device: False (with a message) when it cannot be had."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mine:
        from harness import loader, manifest

        loader.use_learner_parts({kata.id for kata in manifest.katas()})
    if args.device == "cuda" and not torch.cuda.is_available():
        why = "this torch is a CPU build" if torch.version.cuda is None else "torch finds no CUDA GPU on this machine"
        print(f"kata train: --device cuda, but {why}; use --device cpu (or auto).", file=sys.stderr)
        return False
    return True


def _write_outputs(args, model, out: Path, world: int, seconds: float, global_losses: list, eval_losses: dict, title: str,
                   console) -> None:
    """Rank 0, after training: the checkpoint, losses.json, the loss plot, and a line that sums it up."""
    from harness.checkpoint import save_checkpoint

    checkpoint = save_checkpoint(model, out / "model.safetensors", steps=str(args.steps), corpus=str(args.data or STDLIB))
    summary = {"steps": args.steps, "processes": world, "batch_size_per_process": args.batch_size, "seconds": round(seconds, 1),
               "train_losses": global_losses, "eval_losses": {str(k): v for k, v in eval_losses.items()}}
    (out / "losses.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    plot = plot_losses(global_losses, eval_losses, out / "loss.png", title)
    first, last = global_losses[0] if global_losses else math.nan, global_losses[-1] if global_losses else math.nan
    final_eval = eval_losses.get(args.steps, math.nan)
    console.print(f"{args.steps} steps in {seconds:.0f} s: training loss {first:.3f} -> {last:.3f}, held-out {final_eval:.3f}\n"
                  f"wrote {checkpoint}, {plot} and {out / 'samples.jsonl'}")


def _log_samples(model, prompts, seed: int, view, out: Path, step: int, loss: float) -> None:
    """At each evaluation (rank 0): sample, append to samples.jsonl, show under the bar."""
    try:
        samples = sample_completions(model, prompts, seed)
    except NotImplementedError:  # --mine before the sampling katas are done
        return
    view.step, view.loss, view.samples = step, loss, samples
    with open(out / "samples.jsonl", "a", encoding="utf-8") as file:
        for sample in samples:
            file.write(json.dumps({"step": step, "held_out_loss": loss, **sample}, ensure_ascii=False) + "\n")


def run(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from harness import parts

    if not _configure(args):
        return 2
    rank, world, device = start_distributed(args.device)
    console = Console(highlight=False, quiet=rank != 0)
    started = time.time()
    try:
        documents = read_documents(args.data, args.max_chars)
        tokens = tokenize(documents)
        cfg = Config(d_model=args.d_model, n_heads=args.n_heads, n_layers=args.n_layers, d_vocab=50257, n_ctx=args.n_ctx)
        train_windows, eval_windows = split_windows(tokens, cfg.n_ctx, args.eval_fraction)
        eval_windows = eval_windows[:: math.ceil(len(eval_windows) / args.eval_windows)]  # evaluation stays cheap
        torch.manual_seed(args.seed)  # the same initial weights in every process
        model = parts.GPT2(cfg).to(device)
        n_params = sum(p.numel() for p in model.parameters())
        console.print(
            f"corpus: {len(documents)} documents from {args.data or STDLIB}, {len(tokens):,} tokens; "
            f"{len(train_windows):,} training and {len(eval_windows):,} held-out windows of {cfg.n_ctx}\n"
            f"model: {n_params / 1e6:.1f}M parameters (d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads); "
            f"{args.steps} steps of {args.batch_size} windows x {processes(world)} on {device.type}; "
            f"a model that knows nothing scores {math.log(cfg.d_vocab):.2f}\n"
            + ("code: your katas (model, windows, loss, training loop), from katas/" if args.mine else
               "code: the reference solutions; `kata train --mine` trains with yours (katas/)")
        )
        progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=args.quiet or rank != 0)
        task = progress.add_task("training", total=args.steps, status="")
        global_losses = []
        out = Path(args.out)
        view = SamplesView()
        prompts = sample_prompts(eval_windows).to(device)
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            (out / "samples.jsonl").write_text("", encoding="utf-8")

        def log_samples(step: int, loss: float) -> None:
            if rank == 0 and args.samples:
                _log_samples(model, prompts, args.seed, view, out, step, loss)

        def on_step(log, mean_loss):
            global_losses.append(mean_loss)
            held_out = f"  held-out {list(log.eval_losses.values())[-1]:.3f}" if log.eval_losses else ""
            progress.update(task, advance=1, status=f"loss {mean_loss:.3f}{held_out}")
            if len(log.train_losses) in log.eval_losses:
                log_samples(len(log.train_losses), log.eval_losses[len(log.train_losses)])

        # The held-out loss before any training: where the curve starts (about ln(d_vocab)).
        step0 = parts.evaluate(model, eval_windows.to(device), args.batch_size) if rank == 0 else math.nan
        log_samples(0, step0)
        with live_display(progress, view, console, hidden=args.quiet or rank != 0):
            log = fit(model, train_windows, eval_windows, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, eval_every=args.eval_every, seed=args.seed, on_step=on_step)
        eval_losses = {0: step0, **log.eval_losses}
        seconds = time.time() - started
        if rank == 0:
            title = f"GPT-2 {n_params / 1e6:.1f}M on {len(tokens):,} tokens, {processes(world)}"
            _write_outputs(args, model, out, world, seconds, global_losses, eval_losses, title, console)
        if world > 1:
            # Every process waits for rank 0's samples and files: a process group taken down while
            # another process still works aborts that process ("terminate called ...").
            dist.barrier()
    except NotImplementedError:
        if not args.mine:
            raise
        console.print("[red]--mine: a kata it needs is not done yet (python -m harness progress shows which).[/]")
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0
