"""A small GPT-2 with real induction heads, trained here, reproducibly, in about 25 s on a CPU.

The interpretability katas (katas/interp) need a model whose circuits are known, not noise:
seeded random weights have none. The task: `half` random tokens, then the same tokens again.
The first half cannot be predicted; the second half can, by an induction circuit: a
previous-token head in layer 0 writes "the token before me was A" into each position, and an
induction head in layer 1 attends from the current token A to the position after A's earlier
occurrence and copies what it finds there. It trains on random tokens in which a segment of
random length, at a random place, repeats (`training_tokens`): with one fixed half length, a
model learns to look back by position alone and grows no induction heads.

    python -m harness.induction            # retrain and overwrite harness/models/induction.safetensors

The weights ship in the repository (harness/models/induction.safetensors, 0.31 MB), so no
suite trains; tests/test_induction.py retrains it and checks that the result matches.
"""
from pathlib import Path

import torch

from harness import loader, manifest
from harness.config import Config

CONFIG = Config(d_model=64, n_heads=4, n_layers=2, d_vocab=64, n_ctx=32, d_mlp=128)
HALF = CONFIG.n_ctx // 2  # tokens in each half of a repeated sequence
PATH = Path(__file__).parent / "models" / "induction.safetensors"
STEPS, BATCH_SIZE, LR, SEED = 1500, 32, 1e-3, 0


def repeated_tokens(n_sequences: int, seed: int, half: int = HALF, d_vocab: int = CONFIG.d_vocab) -> torch.Tensor:
    """(n_sequences, 2 * half) token ids: `half` random tokens, then the same ones again."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, d_vocab, (n_sequences, half), generator=generator)
    return torch.cat([first, first], dim=1)


def training_tokens(n_sequences: int, seed: int, n_ctx: int = CONFIG.n_ctx, d_vocab: int = CONFIG.d_vocab) -> torch.Tensor:
    """(n_sequences, n_ctx) token ids, each a random segment of 4 to n_ctx // 2 tokens repeated
    over and over (its length varies from row to row, so no fixed look-back works)."""
    generator = torch.Generator().manual_seed(seed)
    segments = torch.randint(0, d_vocab, (n_sequences, n_ctx), generator=generator)
    lengths = torch.randint(4, n_ctx // 2 + 1, (n_sequences, 1), generator=generator)
    return segments.gather(1, torch.arange(n_ctx) % lengths)


def train_induction_model(steps: int = STEPS, seed: int = SEED):
    """The reference GPT-2, trained by the reference loop on repeated random sequences (one thread:
    the same numbers on every machine that has the same torch)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = loader.load_reference(manifest.get("model.gpt2"))(CONFIG)
        train = loader.load_reference(manifest.get("training.train"))
        log = train(model, training_tokens(20_000, seed + 1), repeated_tokens(256, seed + 2), steps=steps, batch_size=BATCH_SIZE,
                    lr=LR, eval_every=steps // 4, seed=seed)
    finally:
        torch.set_num_threads(threads)
    return model.eval(), log


def main() -> None:
    from harness.checkpoint import save_checkpoint

    model, log = train_induction_model()
    save_checkpoint(model, PATH, task="repeated random sequences", steps=str(STEPS), seed=str(SEED))
    print(f"held-out loss by step: {log.eval_losses}; wrote {PATH} ({PATH.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
