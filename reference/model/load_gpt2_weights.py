"""Loading GPT-2's weights: from Hugging Face's names and layouts to ours.

Hugging Face's GPT2LMHeadModel keeps the same numbers under other names and shapes:

    transformer.wte.weight          (d_vocab, d_model)        -> embed.W_E
    transformer.wpe.weight          (n_ctx, d_model)          -> pos_embed.W_pos
    transformer.h.{i}.ln_1.weight / .bias                     -> blocks.{i}.ln1.w / .b
    transformer.h.{i}.attn.c_attn.weight (d_model, 3*d_model) -> blocks.{i}.attn.W_Q, W_K, W_V
    transformer.h.{i}.attn.c_attn.bias   (3*d_model,)         -> blocks.{i}.attn.b_Q, b_K, b_V
    transformer.h.{i}.attn.c_proj.weight (d_model, d_model)   -> blocks.{i}.attn.W_O
    transformer.h.{i}.attn.c_proj.bias                        -> blocks.{i}.attn.b_O
    transformer.h.{i}.ln_2.weight / .bias                     -> blocks.{i}.ln2.w / .b
    transformer.h.{i}.mlp.c_fc.weight (d_model, d_mlp) / .bias -> blocks.{i}.mlp.W_in / b_in
    transformer.h.{i}.mlp.c_proj.weight (d_mlp, d_model) / .bias -> blocks.{i}.mlp.W_out / b_out
    transformer.ln_f.weight / .bias                           -> ln_final.w / .b
    lm_head.weight                  (d_vocab, d_model)        -> unembed.W_U (d_model, d_vocab)
    (none: GPT-2 has no unembedding bias)                     -> unembed.b_U = zeros

Hugging Face's Conv1D layers store weights as (in, out), like ours. c_attn holds Q, K and V
side by side along its last axis, and inside each the heads are contiguous: columns
h*d_head .. (h+1)*d_head - 1 belong to head h.

Older `transformers` versions saved state dicts differently; accept them too:
- keys without the `transformer.` prefix (`wte.weight`, `h.0.ln_1.weight`, ...: a GPT2Model's);
- no `lm_head.weight`: the unembedding is tied to the token embedding, so use `wte.weight`;
- buffers that are not weights, `h.{i}.attn.bias` (the causal mask) and `h.{i}.attn.masked_bias`:
  ignore them.

Be strict, unlike a `load_state_dict(strict=False)` that leaves a misnamed weight random: any
other Hugging Face key you did not use, or a parameter of the model you did not fill, is an
error that names it.
"""
import einops
import torch
from torch import Tensor, nn

# Old transformers versions saved the causal mask as a buffer: it is not a weight.
NOT_WEIGHTS = (".attn.bias", ".attn.masked_bias")
PREFIX = "transformer."  # old versions saved a GPT2Model's keys, without it


def load_gpt2_weights(model: nn.Module, hf_state_dict: dict[str, Tensor]) -> None:
    """Copy a Hugging Face GPT2LMHeadModel state dict into our GPT2 `model`, in place.

    model: our GPT2 (model.cfg says its sizes); hf_state_dict: GPT2LMHeadModel(...).state_dict().
    Also accepts older state dicts: keys without "transformer.", no lm_head.weight (tied to
    wte.weight), attn.bias / attn.masked_bias buffers (ignored).
    Raises KeyError naming every unused Hugging Face key or unfilled parameter of ours.
    """
    cfg = model.cfg
    remaining, given_as = {}, {}  # our name for each key -> the key as hf_state_dict spells it
    for key, value in hf_state_dict.items():
        if not key.endswith(NOT_WEIGHTS):
            name = key if key.startswith((PREFIX, "lm_head.")) else PREFIX + key
            remaining[name], given_as[name] = value, key

    def take(key: str) -> Tensor:
        if key not in remaining:
            raise KeyError(f"hf_state_dict has no {key!r}")
        return remaining.pop(key)

    def split_heads(packed: Tensor, pattern: str) -> list[Tensor]:
        return [einops.rearrange(part, pattern, n_heads=cfg.n_heads) for part in packed.split(cfg.d_model, dim=-1)]

    ours = {
        "embed.W_E": take("transformer.wte.weight"),
        "pos_embed.W_pos": take("transformer.wpe.weight"),
    }
    for layer in range(cfg.n_layers):
        hf, mine = f"transformer.h.{layer}.", f"blocks.{layer}."
        W_Q, W_K, W_V = split_heads(take(hf + "attn.c_attn.weight"), "d_model (n_heads d_head) -> n_heads d_model d_head")
        b_Q, b_K, b_V = split_heads(take(hf + "attn.c_attn.bias"), "(n_heads d_head) -> n_heads d_head")
        ours |= {
            mine + "ln1.w": take(hf + "ln_1.weight"),
            mine + "ln1.b": take(hf + "ln_1.bias"),
            mine + "attn.W_Q": W_Q,
            mine + "attn.W_K": W_K,
            mine + "attn.W_V": W_V,
            mine + "attn.b_Q": b_Q,
            mine + "attn.b_K": b_K,
            mine + "attn.b_V": b_V,
            mine + "attn.W_O": einops.rearrange(
                take(hf + "attn.c_proj.weight"), "(n_heads d_head) d_model -> n_heads d_head d_model", n_heads=cfg.n_heads
            ),
            mine + "attn.b_O": take(hf + "attn.c_proj.bias"),
            mine + "ln2.w": take(hf + "ln_2.weight"),
            mine + "ln2.b": take(hf + "ln_2.bias"),
            mine + "mlp.W_in": take(hf + "mlp.c_fc.weight"),
            mine + "mlp.b_in": take(hf + "mlp.c_fc.bias"),
            mine + "mlp.W_out": take(hf + "mlp.c_proj.weight"),
            mine + "mlp.b_out": take(hf + "mlp.c_proj.bias"),
        }
    lm_head = take("lm_head.weight") if "lm_head.weight" in remaining else ours["embed.W_E"]  # tied
    ours |= {
        "ln_final.w": take("transformer.ln_f.weight"),
        "ln_final.b": take("transformer.ln_f.bias"),
        "unembed.W_U": lm_head.T,
        "unembed.b_U": torch.zeros(cfg.d_vocab, dtype=lm_head.dtype, device=lm_head.device),
    }
    if remaining:
        raise KeyError(f"unexpected keys in hf_state_dict, not mapped to any parameter: {sorted(given_as[k] for k in remaining)}")
    unfilled = sorted(set(model.state_dict()) - set(ours))
    if unfilled:
        raise KeyError(f"parameters of the model left unfilled: {unfilled}")
    model.load_state_dict(ours, strict=True)
