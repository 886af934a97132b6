"""Generating text: sample one token at a time from the model's predicted distribution.

- temperature divides the logits: below 1 sharpens the distribution, above 1 flattens it,
  and 0 means greedy decoding (always the most likely token);
- top-k keeps only the k most likely tokens; top-p (nucleus) keeps the smallest set of tokens
  whose probabilities add up to p;
- generation stops at any of `stop_ids` (the end-of-turn token in chat), after
  `max_new_tokens`, or when the context window is full.

One engine, `sample_tokens`, does it for everything that generates: the chat and the widget
(`stream`, one answer as it is written), the evaluation (`generate`) and reinforcement
(`generate_groups`, several answers to each question of a batch). It prefills each prompt once,
into a KV cache allocated once; the samples of a prompt share it, and all the prompts of a
batch, left-padded to one length, are sampled together; the forward passes run in the device's
mixed precision (on GPUs); and the randomness comes from an explicit `torch.Generator`, so that
sampling never reseeds the process's random numbers.
"""

from __future__ import annotations

from typing import Iterator

import torch

from .device import autocast, precision_for
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
    """Probabilities (..., vocab) for the next token from the last position's logits (..., vocab)."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth_largest = torch.topk(logits, top_k).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    probabilities = logits.softmax(dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probabilities, order = probabilities.sort(dim=-1, descending=True)
        # drop a token when the tokens more likely than it already reach top_p
        outside = sorted_probabilities.cumsum(dim=-1) - sorted_probabilities >= top_p
        sorted_probabilities[outside] = 0.0
        probabilities = torch.zeros_like(probabilities).scatter(-1, order, sorted_probabilities)
        probabilities /= probabilities.sum(dim=-1, keepdim=True)
    return probabilities


def seeded_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A random generator of its own: seeded by `seed`, or from the system's entropy for None.
    The process's generator (torch.manual_seed) is left as it was."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


@torch.no_grad()
def sample_tokens(model: GPT, prompts: list[list[int]], samples: int, max_new_tokens: int,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  stop_ids=(), generator: torch.Generator | None = None,
                  use_cache: bool = True, precision: str = "auto") -> Iterator[torch.Tensor]:
    """The engine: `samples` continuations of each prompt, all side by side, one step at a time.

    Yields the new token of every row, (len(prompts) * samples,), at each step: the samples of
    the first prompt, then those of the second, and so on. It stops when every row has met a
    stop token, after `max_new_tokens` steps, or when the context is full (rows that stopped
    keep being sampled until the others do: callers drop what follows a row's stop token).

    With the cache, each prompt goes through the model once and its keys and values are copied
    to its samples' rows; prompts of different lengths are left-padded to the longest (see
    `KVCache`). Without it (for comparison, prompts of one length), every step re-runs the model
    over the whole sequences. `precision` is the stage's (a profile's `precision` setting):
    "auto" is the device's fast format (see device.precision_for).
    """
    for prompt in prompts:
        check_prompt(model, prompt)
    check_sampling(temperature, top_k, top_p)
    device = next(model.parameters()).device
    precision = precision_for(device, precision)   # auto: bf16 or fp16 on GPUs, fp32 on CPUs
    generator = generator or seeded_generator(None, device)
    longest = max(len(prompt) for prompt in prompts)
    padding = [longest - len(prompt) for prompt in prompts]
    if not use_cache and any(padding):
        raise ValueError("Prompts of different lengths are batched with padding, which needs the cache.")
    rows = len(prompts) * samples
    # the prompts, left-padded to one length (the pad id does not matter: it is never attended to)
    tokens = torch.tensor([[0] * pad + prompt for pad, prompt in zip(padding, prompts)], device=device)
    cache = None
    if use_cache:
        cache = KVCache(model.config.n_layer, model.config.context_length, rows,
                        torch.tensor(padding, device=device) if any(padding) else None)
    else:
        tokens = tokens.repeat_interleave(samples, dim=0)
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    was_training = model.training
    model.eval()
    try:
        for step in range(min(max_new_tokens, model.config.context_length - longest)):
            # with the cache: the prompts, once each, then only the newest token of every row;
            # without it: the whole sequences, every time
            with autocast(device, precision):
                logits = model(tokens, cache=cache)[0][:, -1].float()
            if cache is not None and step == 0:
                cache.repeat_rows(samples)
                logits = logits.repeat_interleave(samples, dim=0)
            new = choose(logits, temperature, top_k, top_p, generator)
            yield new
            finished |= torch.isin(new, stops)
            if bool(finished.all()):
                break
            tokens = new.unsqueeze(1) if cache is not None else torch.cat([tokens, new.unsqueeze(1)], dim=1)
    finally:   # also when the caller stops early (Ctrl-C in a chat)
        model.train(was_training)


def choose(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
           generator: torch.Generator) -> torch.Tensor:
    """The next token of each row, (rows,), from the logits (rows, vocab)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probabilities = next_token_distribution(logits, temperature, top_k, top_p)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)


def check_prompt(model: GPT, prompt: list[int]) -> None:
    if not prompt:
        raise CourseError("The prompt is empty: give the model at least one token to continue.")
    if len(prompt) >= model.config.context_length:
        raise CourseError(f"The prompt has {len(prompt)} tokens and the model's context holds "
                          f"{model.config.context_length}, which leaves no room for an answer: shorten it.")


def stream(model: GPT, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, stop_ids=(),
           seed: int | None = None, use_cache: bool = True, precision: str = "auto") -> Iterator[int]:
    """The new token ids that follow `prompt`, one at a time, as soon as each is chosen (for a
    chat that shows the answer while it is written); the stop token, if reached, is included."""
    generator = seeded_generator(seed, next(model.parameters()).device)
    for new in sample_tokens(model, [prompt], 1, max_new_tokens, temperature, top_k, top_p, stop_ids,
                             generator, use_cache, precision):
        yield int(new[0])


def generate(model: GPT, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, stop_ids=(),
             seed: int | None = None, use_cache: bool = True, precision: str = "auto") -> list[int]:
    """The new token ids that follow `prompt` (the stop token, if reached, is included)."""
    return list(stream(model, prompt, max_new_tokens, temperature, top_k, top_p, stop_ids, seed, use_cache,
                       precision))


def generate_groups(model: GPT, prompts: list[list[int]], samples: int, max_new_tokens: int,
                    temperature: float, stop_ids, generator: torch.Generator | None,
                    precision: str = "auto") -> list[list[list[int]]]:
    """`samples` continuations of each prompt, all sampled as one batch: answers[prompt][sample],
    each ending with its first stop token, or cut after `max_new_tokens`."""
    answers: list[list[int]] = [[] for _ in range(len(prompts) * samples)]
    finished = [False] * len(answers)
    for new in sample_tokens(model, prompts, samples, max_new_tokens, temperature, stop_ids=stop_ids,
                             generator=generator, precision=precision):
        for row, token in enumerate(new.tolist()):
            if not finished[row]:
                answers[row].append(token)
                finished[row] = token in stop_ids
    return [answers[first:first + samples] for first in range(0, len(answers), samples)]
