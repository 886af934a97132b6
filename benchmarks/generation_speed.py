"""Generation speed with and without the KV cache, for the model size of a profile.

    python -m benchmarks.generation_speed [--profile cpu] [--tokens 200]

A freshly initialized model of the profile's size generates the same number of tokens
greedily, first without the cache, then with it, in this process; the ratio compares them
on the same machine under the same load. (Speed does not depend on the weights being trained.)
"""

import argparse
import time

import torch

from python_files.model import GPT
from python_files.profiles import PROFILES
from python_files.sampling import generate


def tokens_per_second(model: GPT, prompt: list[int], tokens: int, use_cache: bool) -> float:
    start = time.perf_counter()
    new = generate(model, prompt, tokens, temperature=0.0, use_cache=use_cache)
    return len(new) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=list(PROFILES))
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()

    profile = PROFILES[args.profile]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = GPT(profile.model).to(device).eval()
    tokens = min(args.tokens, profile.model.context_length - 16)
    prompt = torch.randint(0, profile.model.vocab_size, (16,)).tolist()
    generate(model, prompt, 8, temperature=0.0)   # warm-up: first calls allocate and load kernels
    uncached = tokens_per_second(model, prompt, tokens, use_cache=False)
    cached = tokens_per_second(model, prompt, tokens, use_cache=True)
    print(f"profile {profile.name} on {device}: {model.num_parameters() / 1e6:.1f}M parameters, "
          f"{tokens} new tokens after a 16-token prompt")
    print(f"without KV cache: {uncached:8.0f} tokens/s")
    print(f"with KV cache:    {cached:8.0f} tokens/s")
    print(f"speed-up:         {cached / uncached:8.1f}x")


if __name__ == "__main__":
    main()
