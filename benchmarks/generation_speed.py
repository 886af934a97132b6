"""Generation speed for the model size of a profile: the KV cache, and groups sampled as a batch.

    python -m benchmarks.generation_speed [--profile cpu] [--tokens 200] [--group 8]

A freshly initialized model of the profile's size (speed does not depend on the weights being
trained), in this process, so that the ratios compare runs on the same machine under the same
load:

- one answer generated greedily, without the cache, then with it;
- what reinforcement samples: `--group` answers of 64 tokens to one 40-token prompt, as one
  batch from a prompt prefilled once (the engine), against the same answers one at a time;
- a reinforcement batch: `--group` answers to each of `--questions` prompts of 30 to 50
  tokens, the questions one after another, against all of them in one batch, left-padded.
"""

import argparse
import time

import torch

from benchmarks.machine import describe_machine
from python_files.device import default_device
from python_files.errors import sentence_on_error
from python_files.model import GPT
from python_files.profiles import PROFILES
from python_files.reinforce import MAX_ANSWER_TOKENS
from python_files.sampling import generate, generate_groups
from python_files.seeds import generator_for


def tokens_per_second(model: GPT, prompt: list[int], tokens: int, use_cache: bool) -> float:
    start = time.perf_counter()
    new = generate(model, prompt, tokens, temperature=0.0, use_cache=use_cache)
    return len(new) / (time.perf_counter() - start)


def sampled_tokens_per_second(model: GPT, prompts: list[list[int]], group: int, batched: bool, seed: int) -> float:
    """Sampled tokens per second for `group` answers of MAX_ANSWER_TOKENS to each prompt (no stop
    token: all answers run to the end), all in one batch or one batch per prompt."""
    generator = generator_for(seed, "benchmark samples", next(model.parameters()).device)
    start = time.perf_counter()
    batches = [prompts] if batched else [[prompt] for prompt in prompts]
    answers = [answer for batch in batches
               for answers in generate_groups(model, batch, group, MAX_ANSWER_TOKENS, 1.0, (), generator)
               for answer in answers]
    return sum(len(answer) for answer in answers) / (time.perf_counter() - start)


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=list(PROFILES))
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--questions", type=int, default=8)
    args = parser.parse_args()

    profile = PROFILES[args.profile]
    device = default_device()
    model = GPT(profile.model, generator_for(profile.seed, "initial weights")).to(device).eval()
    tokens = min(args.tokens, profile.model.context_length - 16)
    prompts = generator_for(profile.seed, "benchmark prompts")     # random ids: only their number matters
    prompt = torch.randint(0, profile.model.vocab_size, (16,), generator=prompts).tolist()
    generate(model, prompt, 8, temperature=0.0)   # warm-up: first calls allocate and load kernels
    print(describe_machine(device))
    print(f"profile {profile.name} on {device}: {model.num_parameters() / 1e6:.1f}M parameters")
    uncached = tokens_per_second(model, prompt, tokens, use_cache=False)
    cached = tokens_per_second(model, prompt, tokens, use_cache=True)
    print(f"{tokens} new tokens after a 16-token prompt:")
    print(f"  without KV cache: {uncached:8.0f} tokens/s")
    print(f"  with KV cache:    {cached:8.0f} tokens/s   ({cached / uncached:.1f}x)")
    question = torch.randint(0, profile.model.vocab_size, (40,), generator=prompts).tolist()
    # the same answers, each sampled alone: the question asked `group` times, one answer each
    one_by_one = sampled_tokens_per_second(model, [question] * args.group, 1, batched=False, seed=profile.seed)
    batched = sampled_tokens_per_second(model, [question], args.group, batched=True, seed=profile.seed)
    print(f"{args.group} sampled answers of {MAX_ANSWER_TOKENS} tokens to a 40-token question:")
    print(f"  one at a time:              {one_by_one:8.0f} tokens/s")
    print(f"  one batch, prompt shared:   {batched:8.0f} tokens/s   ({batched / one_by_one:.1f}x)")
    lengths = torch.linspace(30, 50, args.questions).round().int().tolist()
    questions = [torch.randint(0, profile.model.vocab_size, (length,), generator=prompts).tolist() for length in lengths]
    apart = sampled_tokens_per_second(model, questions, args.group, batched=False, seed=profile.seed)
    together = sampled_tokens_per_second(model, questions, args.group, batched=True, seed=profile.seed)
    print(f"{args.group} answers to each of {args.questions} questions of {lengths[0]} to {lengths[-1]} tokens:")
    print(f"  one question after another: {apart:8.0f} tokens/s")
    print(f"  one batch, left-padded:     {together:8.0f} tokens/s   ({together / apart:.1f}x)")


if __name__ == "__main__":
    main()
