"""The language-modelling loss: the mean cross-entropy of the next token.

Training asks the model to give high probability to the token that really came next. The
loss is the negative log-probability of each next token (parts.next_token_log_probs),
averaged over every prediction of every sequence in the batch: one number to minimise.

Two numbers to know it by: a model that gives every token the same logit (it knows nothing)
scores exactly log(d_vocab), about 10.8 for GPT-2's 50257 tokens; a perfect model scores 0.
It equals torch.nn.functional.cross_entropy on logits[:, :-1] against tokens[:, 1:], and
Hugging Face's GPT2LMHeadModel(tokens, labels=tokens).loss, which shifts the same way.
"""
from jaxtyping import Float, Int
from torch import Tensor

from harness import parts


def cross_entropy_loss(logits: Float[Tensor, "batch posn d_vocab"], tokens: Int[Tensor, "batch posn"]) -> Float[Tensor, ""]:
    """The mean over batch and positions of -log P(next token); a scalar that gradients flow through."""
    raise NotImplementedError
