"""check_gradients' messages: each names the parameters concerned, and each hint fires on its own
mistake and on no other (a tiny attention-like module, one mistake at a time)."""
import pytest
import torch
from torch import nn

from harness.failures import take_recognised
from harness.testing.data import randn
from harness.testing.gradients import NAMES_SHOWN, _listed, check_gradients

KATA = "attention.multi_head_attention"
D_MODEL, D_HEAD = 6, 4


class TinyAttention(nn.Module):
    """One causal head: q, k, v from their own weights (and biases), W_O back to d_model. `mistake`
    names the slip its forward makes ("" for none)."""

    def __init__(self, mistake: str = ""):
        super().__init__()
        self.mistake = mistake
        generator = torch.Generator().manual_seed(0)
        for name, shape in (("W_Q", (D_MODEL, D_HEAD)), ("W_K", (D_MODEL, D_HEAD)), ("W_V", (D_MODEL, D_HEAD)),
                            ("W_O", (D_HEAD, D_MODEL)), ("b_Q", (D_HEAD,)), ("b_K", (D_HEAD,)), ("b_V", (D_HEAD,)),
                            ("b_O", (D_MODEL,))):
            setattr(self, name, nn.Parameter(torch.randn(*shape, generator=generator) / 2))

    def forward(self, x):
        W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, b_O = (getattr(self, name) for name in
                                                  ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"))
        m = self.mistake
        if m == "copies":  # fresh leaves made from the parameters: autograd never reaches them
            W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, b_O = (torch.tensor(p.detach().numpy(), requires_grad=True)
                                                      for p in (W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, b_O))
        if m == "values_from_W_K":
            W_V = W_K
        if m == "values_from_W_K_no_bias":
            W_V, b_V = W_K, torch.zeros_like(b_V)
        if m == "bias_data":
            b_V = b_V.data
        if m == "values_cancel":  # W_V takes part, with no effect: its gradient is 0, not None
            W_V = W_V - W_V + W_K
        if m == "queries_doubled":
            W_Q = 2 * W_Q
        if m == "output_bias_tripled":
            b_O = 3 * b_O
        if m == "key_bias_unused":  # its reference gradient is 0: not checked
            b_K = torch.zeros_like(b_K)
        if m == "query_bias_straight_through":  # the right value, a gradient scaled entry by entry
            b_Q = b_Q + (b_Q - b_Q.detach()) * torch.linspace(0, 1, D_HEAD)
        if m == "nan_gradient":  # 0 * sqrt(0): the output is right, the gradient 0 * inf
            b_O = b_O + 0 * torch.sqrt(W_O.sum(0) - W_O.sum(0).detach())
        q, k, v = x @ W_Q + b_Q, x @ W_K + b_K, x @ W_V + b_V
        scores = q @ k.transpose(-1, -2) / D_HEAD ** 0.5
        posn = x.shape[-2]
        scores = scores.masked_fill(torch.ones(posn, posn, dtype=torch.bool).triu(1), float("-inf"))
        out = scores.softmax(-1) @ v @ W_O / (2 if m == "head_halved" else 1) + b_O
        return out.detach() if m == "detached" else out


# A phrase of each message or hint: a failure must say its own and none of the others.
PHRASES = {
    "output does not require grad": "does not require grad",
    "no parameter gets a gradient": "No parameter gets a gradient",
    "unused": "never take",
    "hidden from autograd": "autograd cannot see through",
    "zero gradient, no effect": "no effect on",
    "same-shape stand-ins": "(the same shape) used in its place",
    "another weight": "Is another weight used",
    "wrong values": "wrong values",
    "scaled": "times the reference's",
    "used differently": "differently from the reference",
    "output differs": "itself differs from the reference",
    "around autograd": "goes around autograd",
    "NaN": "contains NaN",
}

CASES = {
    "detached": {"output does not require grad"},
    "copies": {"no parameter gets a gradient"},
    "values_from_W_K": {"unused", "same-shape stand-ins"},
    "values_from_W_K_no_bias": {"unused", "another weight"},
    "bias_data": {"hidden from autograd"},
    "values_cancel": {"zero gradient, no effect", "another weight"},
    "queries_doubled": {"wrong values", "output differs"},
    "head_halved": {"wrong values", "scaled"},
    "output_bias_tripled": {"wrong values", "scaled"},
    "query_bias_straight_through": {"wrong values", "around autograd"},
    "nan_gradient": {"wrong values", "NaN"},
}


# The failures whose message names a recognised mistake (the verdict prefers them); the others give
# the details, or a general hint.
RECOGNISED = {"values_from_W_K", "values_from_W_K_no_bias", "bias_data", "values_cancel", "head_halved",
              "output_bias_tripled"}


def failure_of(mistake: str) -> str:
    x = randn(2, 5, D_MODEL, seed=1)
    with pytest.raises(pytest.fail.Exception) as failure:
        check_gradients(TinyAttention(mistake), TinyAttention(), x, kata=KATA, what="Attention output")
    return failure.value.msg


def said(message: str) -> set:
    return {what for what, phrase in PHRASES.items() if phrase in message}


@pytest.mark.parametrize("mistake", CASES)
def test_each_message_fires_on_its_mistake_only(mistake):
    take_recognised()
    message = failure_of(mistake)
    assert said(message) == CASES[mistake], message
    assert take_recognised() == (mistake in RECOGNISED)
    assert message.endswith(f"Stuck? kata hint {KATA}"), message


def test_the_reference_and_an_unused_parameter_that_does_not_learn_pass():
    x = randn(2, 5, D_MODEL, seed=1)
    for mistake in ("", "key_bias_unused"):
        check_gradients(TinyAttention(mistake), TinyAttention(), x, kata=KATA, what="Attention output")


def test_values_from_W_K_names_W_V_not_W_Q():
    message = failure_of("values_from_W_K")
    assert message.startswith("W_V gets no gradient: it never takes part in Attention output. "
                              "Is W_Q or W_K (the same shape) used in its place?"), message
    assert "W_Q has" not in message and "W_Q gets" not in message


def test_two_unused_parameters_are_both_named():
    assert failure_of("values_from_W_K_no_bias").startswith("W_V, b_V get no gradient: they never take part")


def test_a_used_but_detached_parameter_is_told_apart_from_an_unused_one():
    assert failure_of("bias_data").startswith("b_V gets no gradient, though Attention output is right: it takes part, "
                                              "but through a .detach() or .data (on it or on a result computed from it)")


def test_every_wrong_gradient_is_named_and_the_right_ones_too():
    message = failure_of("queries_doubled")
    header = message.splitlines()[0]
    assert header.startswith("The gradients of W_Q, W_K, W_V, W_O, b_Q have the wrong values (b_V, b_O are right). "
                             "In W_Q:"), header
    assert "Mismatched elements" in message.splitlines()[1]


def test_one_wrong_gradient_scaled():
    message = failure_of("output_bias_tripled")
    assert message.startswith("The gradient of b_O has the wrong values (W_Q, W_K, W_V, W_O, b_Q, b_V are right).\n"
                              "Mismatched elements"), message
    assert "The gradient of b_O is 3 times the reference's: the forward multiplies b_O, or the term it is in, by 3." \
        in message


def test_gradients_scaled_by_the_same_factor():
    message = failure_of("head_halved")
    assert message.startswith("The gradients of W_Q, W_K, W_V, W_O, b_Q, b_V have the wrong values (b_O is right). "
                              "In W_Q:"), message
    assert "Each of these gradients is 0.5 (1/2) times the reference's: the forward multiplies the term they are in by " \
        "0.5 (1/2)." in message, message


def test_long_lists_are_cut():
    names = [f"blocks.{i}.attn.W_Q" for i in range(NAMES_SHOWN + 5)]
    assert _listed(names).endswith(f"blocks.{NAMES_SHOWN - 1}.attn.W_Q and 5 more")
    assert _listed(names[:3]) == "blocks.0.attn.W_Q, blocks.1.attn.W_Q, blocks.2.attn.W_Q"
