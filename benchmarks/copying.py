"""Can the model copy what it has just read? Random token sequences, each written twice.

    LLM_PROFILE=cpu python -m benchmarks.copying [--length 8 32] [--sequences 64]

Saying "I don't know json.fly" about a name never seen means copying the name from the question
into the answer. Transformers learn to copy with *induction heads* (Olsson et al., "In-context
Learning and Induction Heads", arXiv 2209.11895): a head that finds the earlier occurrence of the
current token and predicts the token that followed it. Such a model predicts the second copy of
a random sequence almost perfectly, though the first is pure chance.

For each model of this profile's run (the base model of 04, the fine-tuned one of 06, the
reinforced one of 06b, those that exist), `--sequences` random sequences of each `--length` are
drawn from the ordinary tokens (ids 300 to the vocabulary's end: no byte of a split character,
no special token), each written twice in a row, and the model reads them at once. Printed, for
each half: the share of its next tokens the model ranks first (top-1), and its mean loss; chance
is 1 / the number of tokens drawn from, a loss of ln(that number).
"""

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from python_files.artifacts import Artifacts
from python_files.checkpoint import Checkpoints, load_model
from python_files.device import default_device
from python_files.errors import sentence_on_error
from python_files.model import GPT
from python_files.profiles import active_profile
from python_files.tokenizer import TextTokenizer

FIRST_ORDINARY_ID = 300


def halves(model: GPT, sequences: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Top-1 and mean loss on the next tokens of each half of the doubled sequences (B, 2L); the
    first token of each half is left out: within the first half it has nothing to follow."""
    length = sequences.size(1) // 2
    with torch.no_grad():
        logits = model(sequences[:, :-1])[0].float()             # position t predicts token t + 1
    targets = sequences[:, 1:]
    result = {}
    for name, positions in (("first", slice(0, length - 1)), ("second", slice(length, 2 * length - 1))):
        part, wanted = logits[:, positions], targets[:, positions]
        top1 = (part.argmax(-1) == wanted).float().mean().item()
        loss = F.cross_entropy(part.reshape(-1, part.size(-1)), wanted.reshape(-1)).item()
        result[name] = (top1, loss)
    return result


def doubled_sequences(count: int, length: int, vocab_size: int, seed: int, device) -> torch.Tensor:
    drawn = np.random.default_rng([seed, length]).integers(FIRST_ORDINARY_ID, vocab_size, size=(count, length))
    return torch.tensor(np.concatenate([drawn, drawn], axis=1), device=device)


@sentence_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--sequences", type=int, default=64)
    args = parser.parse_args()
    profile, device = active_profile(), default_device()
    artifacts = Artifacts.for_profile(profile.name)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    stages = {"base model (04)": Checkpoints(artifacts.checkpoints("pretrain")).best,
              "fine-tuned (06)": Checkpoints(artifacts.checkpoints("sft")).best,
              "reinforced (06b)": Checkpoints(artifacts.checkpoints("reinforce")).last}
    drawn_from = tokenizer.vocab_size - FIRST_ORDINARY_ID
    print(f"{profile.summary()}\nchance: top-1 {1 / drawn_from:.2%}, loss {math.log(drawn_from):.2f}\n")
    print(f"{'model':<18} {'length':>6}  {'first half: top-1, loss':>24}  {'second half: top-1, loss':>25}")
    for name, path in stages.items():
        if not path.exists():
            continue
        model = load_model(path, device, tokenizer.sha256).eval()
        for length in args.length:
            result = halves(model, doubled_sequences(args.sequences, length, tokenizer.vocab_size, profile.seed, device))
            print(f"{name:<18} {length:>6}  " + "  ".join(f"{result[half][0]:>15.1%}, {result[half][1]:>6.2f}"
                                                          for half in ("first", "second")), flush=True)


if __name__ == "__main__":
    main()
