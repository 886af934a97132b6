"""Generation speed for the model size of a profile: the KV cache, and groups sampled as a batch.

    python -m benchmarks.generation_speed [--profile cpu] [--tokens 200] [--group 8]

A freshly initialized model of the profile's size (speed does not depend on the weights being
trained), in this process, so that the ratios compare runs on the same machine under the same
load:

- one answer generated greedily, without the cache, then with it;
- what reinforcement samples: `--group` answers of 64 tokens to one 40-token prompt, as one
  batch from a prompt prefilled once (the engine), against the same answers one at a time.
"""

import argparse
import time

import torch

from benchmarks.machine import describe_machine
from python_files.device import default_device
from python_files.model import GPT
from python_files.profiles import PROFILES
from python_files.reinforce import MAX_ANSWER_TOKENS
from python_files.sampling import generate, generate_group


def tokens_per_second(model: GPT, prompt: list[int], tokens: int, use_cache: bool) -> float:
    start = time.perf_counter()
    new = generate(model, prompt, tokens, temperature=0.0, use_cache=use_cache)
    return len(new) / (time.perf_counter() - start)


def group_tokens_per_second(model: GPT, prompt: list[int], group: int, batched: bool) -> float:
    """Sampled tokens per second for `group` answers of MAX_ANSWER_TOKENS (no stop token: all
    answers run to the end), all at once or one after the other."""
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(0)
    start = time.perf_counter()
    if batched:
        answers = generate_group(model, prompt, group, MAX_ANSWER_TOKENS, 1.0, (), generator)
    else:
        answers = [answer for _ in range(group)
                   for answer in generate_group(model, prompt, 1, MAX_ANSWER_TOKENS, 1.0, (), generator)]
    return sum(len(answer) for answer in answers) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=list(PROFILES))
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--group", type=int, default=8)
    args = parser.parse_args()

    profile = PROFILES[args.profile]
    device = default_device()
    torch.manual_seed(0)
    model = GPT(profile.model).to(device).eval()
    tokens = min(args.tokens, profile.model.context_length - 16)
    prompt = torch.randint(0, profile.model.vocab_size, (16,)).tolist()
    generate(model, prompt, 8, temperature=0.0)   # warm-up: first calls allocate and load kernels
    print(describe_machine(device))
    print(f"profile {profile.name} on {device}: {model.num_parameters() / 1e6:.1f}M parameters")
    uncached = tokens_per_second(model, prompt, tokens, use_cache=False)
    cached = tokens_per_second(model, prompt, tokens, use_cache=True)
    print(f"{tokens} new tokens after a 16-token prompt:")
    print(f"  without KV cache: {uncached:8.0f} tokens/s")
    print(f"  with KV cache:    {cached:8.0f} tokens/s   ({cached / uncached:.1f}x)")
    question = torch.randint(0, profile.model.vocab_size, (40,)).tolist()
    one_by_one = group_tokens_per_second(model, question, args.group, batched=False)
    batched = group_tokens_per_second(model, question, args.group, batched=True)
    print(f"{args.group} sampled answers of {MAX_ANSWER_TOKENS} tokens to a 40-token question:")
    print(f"  one at a time:              {one_by_one:8.0f} tokens/s")
    print(f"  one batch, prompt shared:   {batched:8.0f} tokens/s   ({batched / one_by_one:.1f}x)")


if __name__ == "__main__":
    main()
