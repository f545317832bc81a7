"""Models and inputs for the interpretability suites (katas/interp).

- `induction_model`: the small GPT-2 trained to grow induction heads (harness/induction.py), as the
  reference GPT2: previous-token heads 0.1 and 0.3, induction heads 1.0 to 1.3.
- `random_model` / `hf_twin`: a reference GPT2 with seeded random weights, and Hugging Face's GPT-2
  holding the same weights (the independent computation: output_hidden_states, output_attentions).
- `repeated`: repeated random sequences; `corrupted`: their first half replaced, for patching.
- `check_model_unchanged`: a kata may read the model, never change it.
"""
import copy

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from harness import induction
from harness.config import Config
from harness.testing import reference, stuck
from harness.testing.oracles import hf_gpt2, reference_gpt2

CFG = Config(d_model=32, n_heads=4, n_layers=2, d_vocab=50, n_ctx=24)  # random weights: 4 heads, 2 layers
HALF = induction.HALF
PREVIOUS_TOKEN_HEADS = [(0, 1), (0, 3)]  # of the induction model, found by the reference detector
INDUCTION_HEADS = [(1, 0), (1, 1), (1, 2), (1, 3)]


def induction_model(device="cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    model = reference("model.gpt2")(induction.CONFIG)
    model.load_state_dict(load_file(str(induction.PATH)))
    return model.to(device=device, dtype=dtype).eval()


def random_model(seed: int, device="cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """A reference GPT2 of CFG with seeded random weights (a copy: a kata cannot spoil another test's)."""
    return copy.deepcopy(reference_gpt2(CFG, seed, str(device))).to(dtype)


def hf_twin(seed: int, device="cpu"):
    """Hugging Face's GPT-2 holding random_model(seed)'s weights, with the attention that can return
    its patterns (output_attentions: the default, SDPA, returns none)."""
    model = copy.deepcopy(hf_gpt2(CFG, seed, str(device)))
    model.set_attn_implementation("eager")
    return model


def repeated(batch: int, seed: int, half: int = HALF, d_vocab: int = induction.CONFIG.d_vocab, device="cpu") -> Tensor:
    return induction.repeated_tokens(batch, seed, half, d_vocab).to(device)


def corrupted(clean: Tensor, seed: int, half: int = HALF, d_vocab: int = induction.CONFIG.d_vocab) -> Tensor:
    """`clean` with its first half replaced by other random tokens: induction now points elsewhere."""
    other = induction.repeated_tokens(len(clean), seed, half, d_vocab).to(clean.device)[:, :half]
    return torch.cat([other, clean[:, half:]], dim=1)


def check_model_unchanged(run, model: nn.Module, *, kata: str, what: str):
    """`run()` leaves every parameter of `model` as it was; returns what run() returned."""
    __tracebackhide__ = True
    before = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    out = run()
    changed = [name for name, tensor in model.state_dict().items() if not torch.equal(tensor, before[name])]
    assert not changed, (
        f"{what} changed the model's parameters {changed[:4]}: read the weights, and change activations through "
        f"run_with_hooks on a copy (z.clone()), never the model itself.\n{stuck(kata)}")
    return out
