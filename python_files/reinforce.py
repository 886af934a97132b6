"""Stage 06b: learning from its own answers (reinforcement by sampling).

The fine-tuned model answers each question of the fine-tuning set several times, and every
answer gets a reward that anyone can check (`reward`): the token F1 against the docstring's
first sentence, or, for an object that does not exist, 1 for an "I don't know" that names it.
Then the model learns from its own answers, each weighted (`answer_weights`):

- **rejection sampling**: weight 1 on the best answer of a question when its reward reaches
  the bar of a correct answer, 0 on the others. This is fine-tuning on its own good answers.
- **group-relative policy gradient** (a simplified GRPO): weight = the answer's reward minus
  the mean reward of the answers to the same question. Answers better than their group become
  more likely, worse ones less likely; when all answers are equally good, nothing is learned.

Both are the fine-tuning loss with a weight per answer, so the loop is `train.train` once
more: only the batches differ. They are sampled from the model being trained, anew at every
step (`SampledAnswers`), and the loss weighs each answer token's cross-entropy by its answer's
weight (see `model.masked_cross_entropy`). Checkpoints, resume, Ctrl-C, several processes and
the log are the loop's; the log also gets each step's mean rewards.

    LLM_PROFILE=cpu python -m python_files.reinforce
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .artifacts import Artifacts
from .chat_format import render_prompt
from .checkpoint import Checkpoints, file_sha256, fingerprint, load_model
from .device import default_device
from .distributed import Distributed
from .errors import CourseError, sentence_on_error
from .loader import Batch
from .model import GPT
from .pretrain_data import check_made_with, check_same_seed
from .profiles import REINFORCE_METHODS as METHODS, Profile, ReinforceConfig, active_profile
from .qa_eval import CORRECT_F1, admits_not_knowing, score
from .sampling import generate_groups
from .seeds import generator_for, seed_for
from .documentation import Question
from .sft_data import conversation_validation, fine_tuning_context, read_questions, read_sft_meta
from .tokenizer import END_OF_TURN, TextTokenizer
from .train import TrainResult, run_from_terminal, train

MAX_ANSWER_TOKENS = 64     # a docstring's first sentence fits; a rambling answer is cut here
SAMPLING_TEMPERATURE = 1.0  # the model's own distribution: what policy gradient assumes


def reward(question: Question, answer: str) -> float:
    """How good `answer` is, from 0 to 1, checked against the reference as notebook 07 checks
    it: the judge's content-word F1 for what a documented object does; 1 or 0 for a made-up one
    (1 only for the whole sentence fine-tuning taught, so that a broken one is never learned) and
    for an object's kind and module (the one right sentence: "A method in the module json." is
    not half right when the object is a function).

    "I don't know" about a documented object gets 0, not its F1: "I don't know re.compile."
    shares "re.compile" with many references and would score above a wrong guess, and
    reinforcement would teach the model to give up on real objects."""
    scored = score(question, answer)
    if question.known and question.aspect == "summary":
        return 0.0 if admits_not_knowing(answer) else scored.f1
    return float(scored.correct)


def answer_weights(rewards: list[float], method: str) -> list[float]:
    """The weight of each answer to one question in the loss (see the module's docstring)."""
    if method not in METHODS:
        raise CourseError(f"method={method!r} is not one of {', '.join(METHODS)}.")
    if method == "rejection":     # the first of the best, also when the whole group is right
        best = max(range(len(rewards)), key=rewards.__getitem__)
        return [float(i == best and rewards[i] >= CORRECT_F1) for i in range(len(rewards))]
    if max(rewards) == min(rewards):
        return [0.0] * len(rewards)   # exactly: r - mean would leave rounding crumbs like 1e-17
    mean = sum(rewards) / len(rewards)
    return [r - mean for r in rewards]


@dataclass
class Group:
    """The answers sampled to one question, and their rewards."""
    question: Question
    prompt: list[int]
    answers: list[list[int]]     # token ids, each ending with <|end|> unless it was cut
    texts: list[str]
    rewards: list[float]


def sample_groups(model: GPT, tokenizer: TextTokenizer, questions: list[Question], samples: int,
                  generator: torch.Generator, temperature: float = SAMPLING_TEMPERATURE,
                  precision: str = "auto") -> list[Group]:
    """`samples` answers to each question, all sampled as one batch, and scored. An answer cut
    before its end token gets 0: an answer that never stops is not an answer, and must not be
    learned as one."""
    end_id = tokenizer.special_id(END_OF_TURN)
    prompts = [render_prompt([{"role": "user", "content": question.question}], tokenizer) for question in questions]
    groups = []
    for question, prompt, answers in zip(questions, prompts, generate_groups(
            model, prompts, samples, MAX_ANSWER_TOKENS, temperature, {end_id}, generator, precision)):
        texts = [tokenizer.decode(answer, skip_special=True).strip() for answer in answers]
        rewards = [reward(question, text) if answer[-1:] == [end_id] else 0.0
                   for answer, text in zip(answers, texts)]
        groups.append(Group(question, prompt, answers, texts, rewards))
    return groups


def sample_group(model: GPT, tokenizer: TextTokenizer, question: Question, samples: int,
                 generator: torch.Generator, temperature: float = SAMPLING_TEMPERATURE) -> Group:
    """`samples` answers to one question, scored (see `sample_groups`)."""
    return sample_groups(model, tokenizer, [question], samples, generator, temperature)[0]


def alternating(questions: list[Question], seed: int) -> list[Question]:
    """The documented and the made-up questions, shuffled, in turn (the fewer repeated).

    The fine-tuning set asks about several documented objects for each made-up one; in those
    proportions measured runs lost many of their right "I don't know"s (32% -> 19%, and -> 4% at
    four times the learning rate; see the README); taking both kinds in turn kept them.
    """
    rng = random.Random(seed)
    known = sorted((q for q in questions if q.known), key=lambda q: (q.name, q.question))
    made_up = sorted((q for q in questions if not q.known), key=lambda q: (q.name, q.question))
    rng.shuffle(known)
    rng.shuffle(made_up)
    if not known or not made_up:
        return known + made_up
    return [q for i in range(max(len(known), len(made_up)))
            for q in (known[i % len(known)], made_up[i % len(made_up)])]


class SampledAnswers:
    """Batches for `train.train` made of the model's own answers, weighted by their rewards.

    Batch k takes the k-th `batch_size / samples` questions of a cycle through `questions`
    (documented and made-up in turn), samples `samples` answers to each, all in one batch of
    `batch_size` answers, with a generator seeded by (seed, k), and returns the answers of
    weight other than 0 as one padded batch: inputs,
    targets, and the weights where fine-tuning has its loss mask. As with
    `loader.RandomWindows`, batch k is the same whatever the number of processes (process
    `rank` draws batches rank, rank + world_size, ...), and `seek` continues a resumed run.
    """

    def __init__(self, model: GPT, tokenizer: TextTokenizer, questions: list[Question],
                 config: ReinforceConfig, seed: int, rank: int = 0, world_size: int = 1,
                 precision: str = "auto"):
        if not questions:
            raise CourseError("There are no fine-tuning questions to learn from: run 05_sft_data.")
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        self.questions = alternating(questions, seed_for(seed, "reinforcement questions"))
        # at least two questions a batch (the config checks it), one of each kind in a row: every
        # report has both rewards, and processes averaging their reports hold the same keys
        self.questions_per_batch, self.samples = config.questions_per_batch, config.samples
        self.batch_size = config.batch_size           # answers sampled per batch
        self.method, self.seed, self.precision = config.method, seed, precision
        self.rank, self.world_size = rank, world_size
        self.next_index = rank      # the number, among all processes' batches, of our next one
        self.groups: list[Group] = []    # sampled since the last report

    def seek(self, batches_drawn: int) -> None:
        """Continue a run in which all processes together have drawn `batches_drawn` batches."""
        self.next_index = batches_drawn + self.rank

    def batch_questions(self, index: int) -> list[Question]:
        first = index * self.questions_per_batch
        return [self.questions[(first + i) % len(self.questions)] for i in range(self.questions_per_batch)]

    def generator(self, index: int) -> torch.Generator:
        """The random generator that samples batch `index`: seeded anew for each batch."""
        return generator_for(self.seed, f"reinforcement batch {index}", self.device)

    def next_batch(self) -> Batch:
        groups = sample_groups(self.model, self.tokenizer, self.batch_questions(self.next_index),
                               self.samples, self.generator(self.next_index), precision=self.precision)
        self.next_index += self.world_size
        self.groups += groups
        sequences = [(group.prompt, answer, weight) for group in groups
                     for answer, weight in zip(group.answers, answer_weights(group.rewards, self.method))
                     if weight != 0]
        if not sequences:
            # nothing to learn from in this batch: one answer of weight 0, so the step's gradient
            # is 0 (AdamW's momentum still moves the weights a little, as after any step)
            sequences = [(groups[0].prompt, groups[0].answers[0], 0.0)]
        return weighted_batch(sequences, self.device)

    def report(self) -> dict:
        """The mean rewards of the answers sampled since the last report (one optimizer step):
        all of them, and per kind of question."""
        rewards = {"reward": [r for g in self.groups for r in g.rewards],
                   "reward_documented": [r for g in self.groups if g.question.known for r in g.rewards],
                   "reward_made_up": [r for g in self.groups if not g.question.known for r in g.rewards]}
        self.groups = []
        return {name: sum(values) / len(values) for name, values in rewards.items() if values}


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


def reinforce(profile: Profile, artifacts: Artifacts, device: torch.device | None = None,
              progress: bool = True, distributed: Distributed = Distributed(),
              checkpoints: Checkpoints | None = None) -> TrainResult:
    """Start from the best fine-tuned checkpoint (or resume checkpoints/reinforce/last.pt) and
    learn from the model's own answers to the fine-tuning questions."""
    device = device or default_device()
    meta = read_sft_meta(artifacts)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    check_made_with(tokenizer, meta, "fine-tuning files in sft/", "05_sft_data")
    check_same_seed(meta, profile.seed, "fine-tuning files in sft/", "05_sft_data")
    finetuned = artifacts.require(Checkpoints(artifacts.checkpoints("sft")).best, "06_sft")
    model = load_model(finetuned, device, tokenizer.sha256)
    config = profile.reinforce
    context = fine_tuning_context(profile.model, model, bool(profile.start_from))
    shards = {"rank": distributed.rank, "world_size": distributed.world_size}
    batches = SampledAnswers(model, tokenizer, read_questions(artifacts, "train"), config, profile.seed,
                             precision=config.precision, **shards)
    # the settings that are constants of this module (the config's own are recorded with it)
    settings = {"temperature": SAMPLING_TEMPERATURE, "bar": CORRECT_F1, "longest answer": MAX_ANSWER_TOKENS}
    trained_on = {"tokenizer": tokenizer.sha256, "fine-tuning files": fingerprint(meta),
                  "fine-tuned model": file_sha256(finetuned), "reinforcement settings": fingerprint(settings)}
    return train(model, batches,
                 lambda: conversation_validation(artifacts, meta, context, config.batch_size,
                                                 config.eval_batches, device, **shards),
                 config, checkpoints or Checkpoints(artifacts.checkpoints("reinforce")),
                 progress=progress, distributed=distributed, trained_on=trained_on,
                 seed=profile.seed, stage="reinforce")


@sentence_on_error
def main() -> None:
    """Reinforcement from a terminal; under torchrun, one process per device."""
    run_from_terminal(reinforce, active_profile())


if __name__ == "__main__":
    main()
