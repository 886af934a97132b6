"""Stage 06b: learning from its own answers (reinforcement by sampling).

The fine-tuned model answers each question of the fine-tuning set several times, and every
answer gets a reward that anyone can check (`reward`): the token F1 against the docstring's
first sentence, or, for an object that does not exist, 1 for an "I don't know" that names it.
Then the model learns from its own answers, each weighted (`answer_weights`):

- **rejection sampling**: weight 1 on the best answer of a question when its reward reaches
  `threshold`, 0 on the others. This is fine-tuning on the model's own good answers.
- **group-relative policy gradient** (a simplified GRPO): weight = the answer's reward minus
  the mean reward of the answers to the same question. Answers better than their group become
  more likely, worse ones less likely; when all answers are equally good, nothing is learned.

Both are the fine-tuning loss with a weight per answer, so the loop is `train.train` once
more: only the batches differ. They are sampled from the model being trained, anew at every
step (`SampledAnswers`), and the loss weighs each answer token's cross-entropy by its answer's
weight (see `model.masked_cross_entropy`). Checkpoints, resume, Ctrl-C and the log are the
loop's; the log also gets each step's mean reward.

    LLM_PROFILE=cpu python -m python_files.reinforce
"""

from __future__ import annotations

import random

import torch

from .artifacts import Artifacts
from .chat import render_prompt
from .checkpoint import Checkpoints, file_sha256, fingerprint, load_model
from .device import default_device
from .distributed import Distributed, run_in_every_process
from .errors import CourseError, sentence_on_error
from .loader import Batch
from .model import GPT, KVCache
from .profiles import Profile, active_profile
from .qa_eval import says_it_does_not_know, token_f1
from .sft import conversation_windows
from .sft_data import Question, read_questions, read_sft_meta
from .tokenizer import END_OF_TURN, TextTokenizer
from .train import TrainConfig, TrainResult, train

METHODS = ("rejection", "grpo")
MAX_ANSWER_TOKENS = 64     # a docstring's first sentence fits; a rambling answer is cut here


def reward(question: Question, answer: str) -> float:
    """How good `answer` is, from 0 to 1, checked against the reference, not judged by a model."""
    if question.known:
        return token_f1(answer, question.answer)
    return float(says_it_does_not_know(answer, question.name))


def answer_weights(rewards: list[float], method: str, threshold: float) -> list[float]:
    """The weight of each answer to one question in the loss (see the module's docstring)."""
    if method == "rejection":
        best = max(range(len(rewards)), key=rewards.__getitem__)
        return [float(i == best and rewards[i] >= threshold) for i in range(len(rewards))]
    mean = sum(rewards) / len(rewards)
    return [r - mean for r in rewards]


@torch.no_grad()
def sample_answers(model: GPT, prompt: list[int], count: int, max_new_tokens: int,
                   temperature: float, end_id: int, generator: torch.Generator) -> list[list[int]]:
    """`count` answers to one prompt, sampled side by side in one batch with a KV cache. Each
    answer ends with `end_id`, or is cut after `max_new_tokens`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    cache = KVCache(model.config.n_layer)
    model_input = torch.tensor([prompt] * count, device=device)
    answers: list[list[int]] = [[] for _ in range(count)]
    finished = [False] * count
    for _ in range(min(max_new_tokens, model.config.context_length - len(prompt))):
        logits, _ = model(model_input, cache=cache)
        probabilities = (logits[:, -1].float() / temperature).softmax(dim=-1)
        model_input = torch.multinomial(probabilities, 1, generator=generator)
        for answer, token in enumerate(model_input.flatten().tolist()):
            if not finished[answer]:
                answers[answer].append(token)
                finished[answer] = token == end_id
        if all(finished):
            break
    model.train(was_training)
    return answers


class SampledAnswers:
    """Batches for `train.train` made of the model's own answers, weighted by their rewards.

    Step k takes the next `questions_per_step` questions of a shuffled cycle through
    `questions`, samples `samples` answers to each with a generator seeded by (seed, k), and
    returns the answers with a weight other than 0 as one padded batch: inputs, targets, and
    the weights where a loss mask would be. Like `loader.RandomWindows`, batch k is the same
    whatever the number of processes (process `rank` takes every `world_size`-th question),
    and `seek` continues a resumed run.
    """

    def __init__(self, model: GPT, tokenizer: TextTokenizer, questions: list[Question],
                 questions_per_step: int, samples: int, method: str, threshold: float = 0.5,
                 temperature: float = 1.0, seed: int = 3, rank: int = 0, world_size: int = 1):
        if method not in METHODS:
            raise CourseError(f"method={method!r} is not one of {', '.join(METHODS)}.")
        if not questions:
            raise CourseError("There are no fine-tuning questions to learn from: run 05_sft_data.")
        self.model, self.tokenizer = model, tokenizer
        self.questions = sorted(questions, key=lambda q: (q.name, q.question))
        random.Random(seed).shuffle(self.questions)
        self.questions_per_step, self.samples = questions_per_step, samples
        self.method, self.threshold, self.temperature, self.seed = method, threshold, temperature, seed
        self.rank, self.world_size = rank, world_size
        self.step = 0
        self.batch_size = questions_per_step * samples           # answers sampled per step
        self.context_length = model.config.context_length
        self.last_rewards: list[float] = []

    def seek(self, batches_drawn: int) -> None:
        self.step = batches_drawn

    def step_questions(self) -> list[Question]:
        first = self.step * self.questions_per_step
        return [self.questions[(first + i) % len(self.questions)]
                for i in range(self.rank, self.questions_per_step, self.world_size)]

    def next_batch(self) -> Batch:
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed * 1_000_003 + self.step)
        end_id = self.tokenizer.special_id(END_OF_TURN)
        sequences, self.last_rewards = [], []
        for question in self.step_questions():
            prompt = render_prompt([{"role": "user", "content": question.question}], self.tokenizer)
            answers = sample_answers(self.model, prompt, self.samples, MAX_ANSWER_TOKENS,
                                     self.temperature, end_id, generator)
            rewards = [reward(question, self.tokenizer.decode(a, skip_special=True).strip()) for a in answers]
            self.last_rewards += rewards
            sequences += [(prompt, answer, weight)
                          for answer, weight in zip(answers, answer_weights(rewards, self.method, self.threshold))
                          if weight != 0]
        self.step += self.world_size
        if not sequences:   # no answer to learn from at this step: a batch that weighs nothing
            sequences = [(prompt, answers[0], 0.0)]
        return weighted_batch(sequences, device)

    def report(self) -> dict:
        """What the log records of the last step: its answers' mean reward."""
        return {"reward": sum(self.last_rewards) / max(1, len(self.last_rewards))}


def weighted_batch(sequences: list[tuple[list[int], list[int], float]], device) -> Batch:
    """(prompt, answer, weight) triples as one batch, padded at the end: the weight sits on the
    targets that are answer tokens, 0 on the prompt and the padding."""
    length = max(len(prompt) + len(answer) for prompt, answer, _ in sequences) - 1
    inputs = torch.zeros(len(sequences), length, dtype=torch.long)
    targets = torch.zeros(len(sequences), length, dtype=torch.long)
    weights = torch.zeros(len(sequences), length)
    for row, (prompt, answer, weight) in enumerate(sequences):
        ids = torch.tensor(prompt + answer)
        inputs[row, :len(ids) - 1], targets[row, :len(ids) - 1] = ids[:-1], ids[1:]
        weights[row, len(prompt) - 1:len(ids) - 1] = weight
    return Batch(inputs.to(device), targets.to(device), weights.to(device))


def reinforce_config(profile: Profile, device: torch.device | None = None) -> TrainConfig:
    return TrainConfig(max_steps=profile.rl_steps, learning_rate=profile.rl_learning_rate,
                       warmup_steps=max(1, profile.rl_steps // 10),
                       eval_interval=max(1, profile.rl_steps // 4), eval_batches=profile.eval_batches,
                       weight_decay=0.0, min_lr_ratio=1.0, precision=profile.precision,
                       compile=False)   # sampling runs the model on new shapes at every token


def reinforce(profile: Profile, artifacts: Artifacts, device: torch.device | None = None,
              progress: bool = True, distributed: Distributed = Distributed(),
              checkpoints: Checkpoints | None = None) -> TrainResult:
    """Start from the best fine-tuned checkpoint (or resume checkpoints/reinforce/last.pt) and
    learn from the model's own answers to the fine-tuning questions."""
    device = device or default_device()
    meta = read_sft_meta(artifacts)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    finetuned = artifacts.require(Checkpoints(artifacts.checkpoints("sft")).best, "06_sft")
    model = load_model(finetuned, device, tokenizer.sha256)
    batches = SampledAnswers(model, tokenizer, read_questions(artifacts, "train"),
                             profile.rl_questions_per_step, profile.rl_samples, profile.rl_method,
                             rank=distributed.rank, world_size=distributed.world_size)
    trained_on = {"tokenizer": tokenizer.sha256, "fine-tuning files": fingerprint(meta),
                  "fine-tuned model": file_sha256(finetuned), "method": profile.rl_method,
                  "answers per question": profile.rl_samples}
    config = reinforce_config(profile, device)
    return train(model, batches,
                 lambda: conversation_windows(artifacts, "val", meta, profile, device, 0, distributed),
                 config, checkpoints or Checkpoints(artifacts.checkpoints("reinforce")),
                 progress=progress, distributed=distributed, trained_on=trained_on)


@sentence_on_error
def main() -> None:
    profile = active_profile()
    result, setup = run_in_every_process(lambda device, setup: reinforce(
        profile, Artifacts.for_profile(profile.name), device, distributed=setup))
    if setup.is_main:
        print(f"step {result.step}: validation loss {result.best_val_loss:.3f} ({result.seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
