"""Beam search from prompts of different lengths, in one left-padded batch.

parts.beam_search needs nothing from its model but a callable from tokens (beams, seq) to logits
(beams, seq, d_vocab): that is where the padding goes. For each prompt row on its own:
- its model is a function of the beams' tokens that runs parts.padded_forward(model, tokens,
  mask) with the mask of those tokens: the row's attention mask (num_beams copies of it), then
  a 1 for every token generated so far (generated tokens are real);
- parts.beam_search(that function, the row as a batch of one, **options) does the rest: the
  beams, the pool, the length penalty and the stopping rules, with the padding kept at the
  front of every sequence it returns (it never looks at the prompt's tokens, padding included,
  except through the model).

Then stack the rows' results: prompt 0's num_return_sequences sequences, then prompt 1's, ...,
shorter ones padded on the right with eos_token_id (or -1 without one) up to the longest, and
their scores in the same order. Hugging Face's generate(input_ids, attention_mask=...,
num_beams=k, pad_token_id=eos_token_id) returns the same.

Options (all keywords, as parts.beam_search takes them): num_beams, max_new_tokens,
eos_token_id, length_penalty, early_stopping, num_return_sequences. (no_repeat_ngram_size is
not offered: Hugging Face's counts the padding's n-grams as if they were text.)

The whole result must fit in the context: prompt_len + max_new_tokens > n_ctx (prompt_len
counts the padding columns) raises harness.config.context_error(prompt_len, max_new_tokens,
n_ctx), the ValueError of every generation function, before the model runs. parts.beam_search's
own refusals (num_return_sequences > num_beams, 2 * num_beams > d_vocab) stay ValueErrors.

model: a parts.GPT2.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts
from harness.config import context_error


def padded_beam_search(
    model: nn.Module,
    prompt: Int[Tensor, "batch prompt_len"],
    attention_mask: Int[Tensor, "batch prompt_len"],
    *,
    num_beams: int,
    max_new_tokens: int,
    eos_token_id: "int | None" = None,
    length_penalty: float = 1.0,
    early_stopping: "bool | str" = False,
    num_return_sequences: int = 1,
) -> tuple[Int[Tensor, "returned total_len"], Float[Tensor, " returned"]]:
    """Sequences (batch * num_return_sequences rows, padded prompt included) and their scores."""
    raise NotImplementedError
