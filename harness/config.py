"""The model's hyperparameters, shared by every kata (not a kata itself)."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Config:
    d_model: int = 768
    n_heads: int = 12
    n_layers: int = 12
    d_vocab: int = 50257
    n_ctx: int = 1024
    d_mlp: int = field(default=0)  # 0 means GPT-2's 4 * d_model
    layer_norm_eps: float = 1e-5
    init_range: float = 0.02

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        if self.d_mlp == 0:
            object.__setattr__(self, "d_mlp", 4 * self.d_model)

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def gpt2_small(cls) -> "Config":
        """GPT-2 small: 124M parameters."""
        return cls()


def context_error(prompt_len: int, max_new_tokens: int, n_ctx: int) -> ValueError:
    """The error every generation function raises, before running the model, when the prompt
    (padding included) and the new tokens would not fit in the context: one message everywhere."""
    return ValueError(
        f"{prompt_len} prompt tokens + {max_new_tokens} new ones = {prompt_len + max_new_tokens} positions "
        f"exceed the context length n_ctx={n_ctx}"
    )
