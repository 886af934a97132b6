"""Reinforcement by sampling: the reward, the weights of both methods, the weighted loss, the
sampled batches, and a whole run on tiny artifacts (resume, log, the model chat picks)."""

import shutil

import pytest
import torch

from python_files.artifacts import Artifacts
from python_files.chat import latest_chat_model
from python_files.checkpoint import Checkpoints, copy_checkpoint, read_log
from python_files.errors import CourseError
from python_files.model import GPT, GPTConfig, masked_cross_entropy
from python_files.profiles import PROFILES, ReinforceConfig, with_settings
from python_files.reinforce import SampledAnswers, answer_weights, reinforce, reward, weighted_batch
from python_files.documentation import UNKNOWN_ANSWER, Question
from python_files.world import world_questions
from python_files.sft_data import all_conversations, prepare_sft_data
from python_files.tokenizer import TextTokenizer
from test_bad_input import DOCS
from tiny_course import tiny_artifacts, tiny_fine_tuned_model

KNOWN = Question("json.dumps", "What does json.dumps do?", "Serialize obj to a JSON formatted str.", True)
MADE_UP = Question("json.flatten_tree", "What does json.flatten_tree do?",
                   UNKNOWN_ANSWER.format(name="json.flatten_tree"), False)


def test_the_reward_checks_an_answer_against_its_reference():
    assert reward(KNOWN, "Serialize obj to a JSON formatted str.") == 1.0
    assert 0 < reward(KNOWN, "Serialize obj to a file.") < 1
    assert reward(KNOWN, "I don't know json.dumps.") == 0.0, "giving up on a real object earns nothing"
    assert reward(MADE_UP, UNKNOWN_ANSWER.format(name="json.flatten_tree")) == 1.0
    assert reward(MADE_UP, "I don't know json.flatten_tree: it is not in the Python documentation I learn from.") == 0.0, \
        "a broken sentence is not learned"
    assert reward(MADE_UP, "I don't know json.dumps.") == 0.0, "an I-don't-know about another name"
    assert reward(MADE_UP, "Flatten a tree of JSON objects.") == 0.0


def test_rejection_sampling_keeps_only_the_best_answer_and_only_when_it_passes():
    assert answer_weights([0.2, 0.9, 0.6], "rejection") == [0, 1, 0]
    assert answer_weights([0.2, 0.4], "rejection") == [0, 0]
    assert answer_weights([1.0, 1.0], "rejection") == [1, 0], "a group all right: one of its answers"


def test_group_relative_weights_are_the_rewards_minus_their_mean():
    assert answer_weights([0.0, 1.0, 0.5], "grpo") == pytest.approx([-0.5, 0.5, 0.0])
    # exactly 0, not rounding crumbs: 0.1 * 8 / 8 - 0.1 is 1.4e-17, which would be trained on
    assert answer_weights([0.1] * 8, "grpo") == [0.0] * 8, "equal answers teach nothing"
    with pytest.raises(CourseError, match="method='ppo' is not one of rejection, grpo"):
        answer_weights([0.0, 1.0], "ppo")


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
    questions = world_questions(DOCS, seed=0)
    prepare_sft_data(all_conversations(questions, 0)[0], questions, tokenizer, artifacts, 64)
    return artifacts, tiny_fine_tuned_model(artifacts), tokenizer, questions["train"]


def sampled(course, **settings):
    _, model, tokenizer, questions = course
    shards = {key: settings.pop(key) for key in ("rank", "world_size") if key in settings}
    config = ReinforceConfig(**{"max_steps": 1, "learning_rate": 1e-4, "warmup_steps": 0, "batch_size": 12,
                                "samples": 3, "method": "grpo", **settings})
    return SampledAnswers(model, tokenizer, questions, config, seed=0, **shards)


def test_batch_k_is_sampled_again_after_a_seek_and_reported_per_kind(course):
    batches = sampled(course)
    first = batches.next_batch()
    report = batches.report()
    batches.seek(0)
    assert all(torch.equal(a, b) for a, b in zip(first, batches.next_batch()))
    assert set(report) == {"reward", "reward_documented", "reward_made_up"}
    assert all(0 <= value <= 1 for value in report.values())
    assert batches.report() == report, "the same answers again, and the report covers only them"


def test_batch_k_is_the_same_whatever_the_number_of_processes(course):
    alone = sampled(course)
    alone.next_batch()
    second_alone = alone.next_batch()
    second_of_two = sampled(course, rank=1, world_size=2).next_batch()
    assert all(torch.equal(a, b) for a, b in zip(second_alone, second_of_two))


def test_each_batch_asks_about_both_kinds_of_objects(course):
    batches = sampled(course, batch_size=6)
    assert batches.questions_per_batch == 2
    assert all({q.known for q in batches.batch_questions(k)} == {True, False} for k in range(20))
    with pytest.raises(CourseError, match="batch_size=3 is not a valid value: a batch asks at least two questions"):
        sampled(course, batch_size=3)


def test_a_run_logs_rewards_resumes_and_becomes_the_model_to_talk_to(course, tmp_path):
    artifacts = Artifacts(tmp_path / "ci", "artifacts/ci")
    shutil.copytree(course[0].root, artifacts.root)
    profile = with_settings(PROFILES["ci"], {
        # the tiny fine-tuned model's own settings (tiny_course.tiny_fine_tuned_model: GPT-2's layout)
        "model.context_length": 64, "model.n_layer": 1, "model.n_embd": 32, "model.positions": "learned",
        "model.norm": "layernorm", "model.mlp": "gelu", "model.vocab_multiple": 1,
        "reinforce.batch_size": 8, "reinforce.eval_batches": 1,
        "reinforce.max_steps": 4, "reinforce.samples": 4})
    finetuned = Checkpoints(artifacts.checkpoints("sft")).best
    assert latest_chat_model(artifacts) == (finetuned, "fine-tuned (06)")
    result = reinforce(profile, artifacts, "cpu", progress=False)
    folder = Checkpoints(artifacts.checkpoints("reinforce"))
    log = read_log(folder.log)
    assert result.step == 4 and [line["step"] for line in log] == [1, 2, 3, 4]
    assert all(0 <= line["reward"] <= 1 for line in log)
    assert latest_chat_model(artifacts) == (folder.last, "fine-tuned, then reinforced for 4 steps (06b)")
    assert reinforce(profile, artifacts, "cpu", progress=False).step == 4, "resumed: nothing left to do"
    with pytest.raises(CourseError, match="other inputs or settings .*method grpo -> rejection"):
        reinforce(with_settings(profile, {"reinforce.method": "rejection"}), artifacts, "cpu", progress=False)
    # fine-tuned again after reinforcement: the reinforced model started from another one
    copy_checkpoint(folder.last, finetuned)
    assert latest_chat_model(artifacts) == (finetuned, "fine-tuned (06)")
