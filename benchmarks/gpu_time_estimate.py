"""How long a profile's training notebooks should take on a GPU, estimated from their FLOPs.

    python -m benchmarks.gpu_time_estimate [--profile colab] [--gpu T4] [--utilization 0.3]

An estimate until someone measures (benchmarks/training_speed.py prints the real MFU):

    time = training FLOPs / (the GPU's published peak x the share of it a run achieves)

- training FLOPs: steps x sequences a step x context x `model.flops_per_token`, for
  pretraining (04), fine-tuning (06) and the training passes of reinforcement (06b);
- reinforcement also samples its answers one token at a time, which is bound by latency, not
  FLOPs: at most `MAX_ANSWER_TOKENS` decoding steps per question, each assumed to cost
  `--decode-ms-per-layer` per layer (eager PyTorch launches a dozen small kernels a layer);
- the utilization is an assumption (--utilization), not a measurement: small models reach a
  smaller share of a GPU's peak than large ones.
"""

import argparse

from benchmarks.training_speed import PEAK_FLOPS
from python_files.errors import sentence_on_error
from python_files.model import flops_per_token
from python_files.profiles import PROFILES, Profile
from python_files.reinforce import MAX_ANSWER_TOKENS

# the tokens of a sampled answer and its question, at most: what a reinforcement window holds
REINFORCE_WINDOW = MAX_ANSWER_TOKENS + 32


def training_tokens(profile: Profile) -> dict[str, int]:
    """Tokens that go through a forward and backward pass, per notebook."""
    context, reinforce = profile.model.context_length, profile.reinforce
    sampled = reinforce.questions_per_batch * reinforce.samples * REINFORCE_WINDOW
    return {"04 pretraining": steps_tokens(profile.pretrain, context),
            "06 fine-tuning": steps_tokens(profile.sft, context),
            "06b reinforcement": reinforce.max_steps * reinforce.grad_accum_steps * sampled}


def steps_tokens(config, context_length: int) -> int:
    return config.max_steps * config.batch_size * config.grad_accum_steps * context_length


def decoding_steps(profile: Profile) -> int:
    """Reinforcement's sampling: one batch of answers per question, a token at a time (at most)."""
    reinforce = profile.reinforce
    return reinforce.max_steps * reinforce.grad_accum_steps * reinforce.questions_per_batch * MAX_ANSWER_TOKENS


def estimate(profile: Profile, peak: float, utilization: float, decode_ms_per_layer: float) -> dict[str, float]:
    """Estimated seconds per notebook."""
    flops = flops_per_token(profile.model)
    seconds = {name: tokens * flops / (peak * utilization)
               for name, tokens in training_tokens(profile).items()}
    seconds["06b reinforcement"] += decoding_steps(profile) * profile.model.n_layer * decode_ms_per_layer / 1e3
    return seconds


def share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share of the peak: give a number in (0, 1].")
    return value


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="colab", choices=PROFILES)
    parser.add_argument("--gpu", default="T4", choices=PEAK_FLOPS)
    parser.add_argument("--utilization", type=share, default=0.3, help="share of the peak (assumed)")
    parser.add_argument("--decode-ms-per-layer", type=float, default=0.3, help="(assumed)")
    args = parser.parse_args()
    profile, peak = PROFILES[args.profile], PEAK_FLOPS[args.gpu]
    flops = flops_per_token(profile.model)
    print(f"profile {profile.name} on a {args.gpu}: {flops / 1e6:.0f} MFLOPs per training token, "
          f"{peak / 1e12:.0f} TFLOPS published peak x {args.utilization:.0%} assumed utilization")
    tokens = training_tokens(profile)
    for name, seconds in estimate(profile, peak, args.utilization, args.decode_ms_per_layer).items():
        print(f"{name:<18} {tokens[name] / 1e6:>9,.1f}M tokens  ~{seconds / 60:>5.0f} min")
    print(f"(06b includes up to {decoding_steps(profile):,} decoding steps at "
          f"{args.decode_ms_per_layer} ms per layer, assumed)")


if __name__ == "__main__":
    main()
