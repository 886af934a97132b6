"""Reinforcement by sampling: the reward, the weights of both methods, the weighted loss, the
sampled batches, and a whole run on tiny artifacts (resume, log, the model chat picks)."""

import dataclasses
import os
import shutil

import pytest
import torch

from python_files.chat import latest_chat_model
from python_files.checkpoint import Checkpoints, read_log
from python_files.errors import CourseError
from python_files.loader import RandomWindows
from python_files.model import GPT, GPTConfig, masked_cross_entropy
from python_files.pretrain_data import open_tokens
from python_files.profiles import PROFILES
from python_files.reinforce import SampledAnswers, answer_weights, reinforce, reward, weighted_batch
from python_files.sft_data import UNKNOWN_ANSWER, Question, all_conversations, docs_questions, prepare_sft_data
from python_files.tokenizer import TextTokenizer
from python_files.train import TrainConfig, train
from test_bad_input import DOCS
from tiny_course import tiny_artifacts

KNOWN = Question("json.dumps", "What does json.dumps do?", "Serialize obj to a JSON formatted str.", True)
MADE_UP = Question("json.flatten_tree", "What does json.flatten_tree do?",
                   UNKNOWN_ANSWER.format(name="json.flatten_tree"), False)


def test_the_reward_checks_an_answer_against_its_reference():
    assert reward(KNOWN, "Serialize obj to a JSON formatted str.") == 1.0
    assert 0 < reward(KNOWN, "Serialize obj to a file.") < 1
    assert reward(KNOWN, "I don't know json.dumps.") < 0.5
    assert reward(MADE_UP, "I don't know json.flatten_tree: it is not in the documentation.") == 1.0
    assert reward(MADE_UP, "I don't know json.dumps.") == 0.0, "an I-don't-know about another name"
    assert reward(MADE_UP, "Flatten a tree of JSON objects.") == 0.0


def test_rejection_sampling_keeps_only_the_best_answer_and_only_when_it_passes():
    assert answer_weights([0.2, 0.9, 0.6], "rejection", threshold=0.5) == [0, 1, 0]
    assert answer_weights([0.2, 0.4], "rejection", threshold=0.5) == [0, 0]


def test_group_relative_weights_are_the_rewards_minus_their_mean():
    assert answer_weights([0.0, 1.0, 0.5], "grpo", threshold=0.5) == pytest.approx([-0.5, 0.5, 0.0])
    assert answer_weights([0.7] * 4, "grpo", threshold=0.5) == [0.0] * 4, "equal answers teach nothing"


def test_a_weighted_batch_puts_each_weight_on_its_answer_targets_only():
    batch = weighted_batch([([1, 2, 3], [4, 5], 2.0), ([1, 2], [6, 7, 8, 9], -1.0)], "cpu")
    assert batch.inputs.tolist() == [[1, 2, 3, 4, 0], [1, 2, 6, 7, 8]]
    assert batch.targets.tolist() == [[2, 3, 4, 5, 0], [2, 6, 7, 8, 9]]
    assert batch.loss_mask.tolist() == [[0, 0, 2, 2, 0], [0, -1, -1, -1, -1]]


def test_signed_weights_give_the_weighted_sum_of_losses_over_the_total_weight():
    logits = torch.randn(1, 3, 5)
    targets = torch.tensor([[1, 2, 3]])
    losses = torch.nn.functional.cross_entropy(logits[0], targets[0], reduction="none")
    weights = torch.tensor([[0.0, 2.0, -1.0]])
    expected = (2 * losses[1] - losses[2]) / 3
    assert masked_cross_entropy(logits, targets, weights).item() == pytest.approx(expected.item(), rel=1e-5)


def answer_log_probability(model, prompt, answer):
    ids = torch.tensor([prompt + answer])
    logits, _ = model(ids[:, :-1])
    log_probs = logits.log_softmax(-1)[0, len(prompt) - 1:]
    return log_probs.gather(1, ids[0, len(prompt):, None]).sum().item()


def test_a_step_makes_the_better_answer_more_likely_and_the_worse_less():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, context_length=16, n_layer=1, n_head=2, n_embd=16))
    prompt, good, bad = [1, 2, 3], [4, 5, 6], [7, 8, 9]
    before = [answer_log_probability(model, prompt, a) for a in (good, bad)]
    batch = weighted_batch([(prompt, good, 0.5), (prompt, bad, -0.5)], "cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(batch.inputs, batch.targets, batch.loss_mask)[1].backward()
    optimizer.step()
    after = [answer_log_probability(model, prompt, a) for a in (good, bad)]
    assert after[0] > before[0] and after[1] < before[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Tiny artifacts, fine-tuning files with their questions, and a briefly trained model as the
    fine-tuned one."""
    root = tmp_path_factory.mktemp("reinforce")
    artifacts = tiny_artifacts(root)
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    questions = docs_questions(DOCS)
    prepare_sft_data(all_conversations(questions)[0], questions, tokenizer, artifacts, 64)
    tokens = open_tokens(artifacts, "train")
    torch.manual_seed(0)
    model = GPT(GPTConfig(tokenizer.vocab_size, context_length=64, n_layer=1, n_head=2, n_embd=32))
    train(model, RandomWindows(tokens, 64, 8), lambda: RandomWindows(tokens, 64, 8),
          TrainConfig(max_steps=4, learning_rate=1e-3, warmup_steps=1, eval_interval=4, eval_batches=1),
          Checkpoints(artifacts.checkpoints("sft")), progress=False, trained_on={"tokenizer": tokenizer.sha256})
    return artifacts, model, tokenizer, questions["train"]


def sampled(course, **settings):
    _, model, tokenizer, questions = course
    return SampledAnswers(model, tokenizer, questions, **{"questions_per_step": 4, "samples": 3,
                                                          "method": "grpo", **settings})


def test_step_k_samples_the_same_batch_again_after_a_seek(course):
    batches = sampled(course)
    first = batches.next_batch()
    batches.seek(0)
    again = batches.next_batch()
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert batches.report()["reward"] == pytest.approx(sum(batches.last_rewards) / 12)


def test_processes_share_a_step_s_questions_without_overlap(course):
    whole = sampled(course).step_questions()
    halves = [sampled(course, rank=rank, world_size=2).step_questions() for rank in (0, 1)]
    assert sorted(halves[0] + halves[1], key=whole.index) == whole and not set(halves[0]) & set(halves[1])


def test_an_unknown_method_is_named(course):
    with pytest.raises(CourseError, match="method='ppo' is not one of rejection, grpo"):
        sampled(course, method="ppo")


def test_a_run_logs_rewards_resumes_and_becomes_the_model_to_talk_to(course):
    artifacts = course[0]
    profile = dataclasses.replace(PROFILES["ci"], context_length=64, batch_size=8, eval_batches=1,
                                  rl_steps=4, rl_questions_per_step=2, rl_samples=3)
    assert latest_chat_model(artifacts)[0] == Checkpoints(artifacts.checkpoints("sft")).best
    result = reinforce(profile, artifacts, "cpu", progress=False)
    folder = Checkpoints(artifacts.checkpoints("reinforce"))
    log = read_log(folder.log)
    assert result.step == 4 and [line["step"] for line in log] == [1, 2, 3, 4]
    assert all(0 <= line["reward"] <= 1 for line in log)
    assert latest_chat_model(artifacts)[0] == folder.last
    assert reinforce(profile, artifacts, "cpu", progress=False).step == 4, "resumed: nothing left to do"
    with pytest.raises(CourseError, match="other inputs or settings .*method"):
        reinforce(dataclasses.replace(profile, rl_method="rejection"), artifacts, "cpu", progress=False)
    # fine-tuned again after reinforcement: the fine-tuned model is the newest
    sft_best = Checkpoints(artifacts.checkpoints("sft")).best
    os.utime(sft_best, (folder.last.stat().st_mtime + 10,) * 2)
    assert latest_chat_model(artifacts)[0] == sft_best
    shutil.rmtree(folder.folder)
