"""Generating text: sample one token at a time from the model's predicted distribution.

- temperature divides the logits: below 1 sharpens the distribution, above 1 flattens it,
  and 0 means greedy decoding (always the most likely token);
- top-k keeps only the k most likely tokens; top-p (nucleus) keeps the smallest set of tokens
  whose probabilities add up to p;
- generation stops at any of `stop_ids` (the end-of-turn token in chat), after
  `max_new_tokens`, or when the context window is full.
"""

from __future__ import annotations

from typing import Iterator

import torch

from .errors import CourseError
from .model import GPT, KVCache


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """One sentence for settings that have no meaning (they would give garbage or a crash)."""
    if not temperature >= 0:   # also catches nan
        raise CourseError(f"temperature={temperature} must be 0 (greedy) or more.")
    if top_k is not None and top_k < 1:
        raise CourseError(f"top_k={top_k} must be at least 1 (or None to keep every token).")
    if top_p is not None and not 0 < top_p <= 1:
        raise CourseError(f"top_p={top_p} must be above 0 and at most 1 (1 keeps every token).")


def next_token_distribution(logits: torch.Tensor, temperature: float, top_k: int | None,
                            top_p: float | None) -> torch.Tensor:
    """Probabilities (vocab,) for the next token from the last position's logits (vocab,)."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        kth_largest = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    probabilities = logits.softmax(dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probabilities, order = probabilities.sort(descending=True)
        # drop a token when the tokens more likely than it already reach top_p
        outside = sorted_probabilities.cumsum(dim=-1) - sorted_probabilities >= top_p
        sorted_probabilities[outside] = 0.0
        probabilities = torch.zeros_like(probabilities).scatter(0, order, sorted_probabilities)
        probabilities /= probabilities.sum()
    return probabilities


def generate(model: GPT, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, stop_ids=(),
             seed: int | None = None, use_cache: bool = True) -> list[int]:
    """The new token ids that follow `prompt` (the stop token, if reached, is included)."""
    return list(stream(model, prompt, max_new_tokens, temperature, top_k, top_p, stop_ids, seed, use_cache))


@torch.no_grad()
def stream(model: GPT, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, stop_ids=(),
           seed: int | None = None, use_cache: bool = True) -> Iterator[int]:
    """Like `generate`, one token id at a time, as soon as it is chosen (for a chat that shows
    the answer while it is written)."""
    check_sampling(temperature, top_k, top_p)
    if not prompt:
        raise CourseError("The prompt is empty: give the model at least one token to continue.")
    if len(prompt) >= model.config.context_length:
        raise CourseError(f"The prompt has {len(prompt)} tokens and the model's context holds "
                          f"{model.config.context_length}, which leaves no room for an answer: shorten it.")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    was_training = model.training
    model.eval()
    max_new_tokens = min(max_new_tokens, model.config.context_length - len(prompt))
    cache = KVCache(model.config.n_layer) if use_cache else None
    tokens = torch.tensor([prompt], device=device)
    try:
        for step in range(max_new_tokens):
            # with a cache only the newest tokens go through the model; without, all of them
            model_input = tokens[:, -1:] if cache is not None and step else tokens
            logits, _ = model(model_input, cache=cache)
            last = logits[0, -1]
            if temperature == 0:
                token = int(last.argmax())
            else:
                probabilities = next_token_distribution(last, temperature, top_k, top_p)
                token = int(torch.multinomial(probabilities, 1, generator=generator))
            yield token
            if token in stop_ids:
                break
            tokens = torch.cat([tokens, torch.tensor([[token]], device=device)], dim=1)
    finally:   # also when the caller stops early (Ctrl-C in a chat)
        model.train(was_training)
