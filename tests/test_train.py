"""The training loop: schedule, parameter groups, exact resume, and the non-finite-loss stop."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from python_files.errors import CourseError
from python_files.loader import Batch, RandomWindows
from python_files.model import GPT, GPTConfig
from python_files.muon import Muon
from python_files.distributed import Distributed
from python_files.checkpoint import Checkpoints, load_checkpoint, read_log
from python_files.device import precision_for
from python_files.pretrain import annealing, pretrain
from python_files.profiles import PROFILES, with_settings
from python_files import train as train_module
from python_files.train import TrainConfig, evaluate, learning_rate_at, make_optimizer, optimizer_step, train
from tiny_course import tiny_artifacts

CONFIG = GPTConfig(vocab_size=64, context_length=16, n_layer=1, n_head=2, n_embd=16)
TOKENS = (np.arange(4000) * 7 % 64).astype(np.uint16)   # a learnable periodic stream


def tiny_run(folder, max_steps=8, poison_at=None, interrupt_at=None, trained_on=None, model_config=CONFIG,
             seed=0, **settings):
    """Train a fresh tiny model in `folder`; optionally break it after some batches."""
    torch.manual_seed(0)
    model = GPT(model_config)
    batches = RandomWindows(TOKENS, 16, 4, seed=0)
    calls = {"n": 0}
    next_batch = batches.next_batch

    def breaking_next_batch():
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt   # as if the process died here
        if calls["n"] == poison_at:
            model.wte.weight.data.fill_(float("nan"))
        return next_batch()

    batches.next_batch = breaking_next_batch
    config = TrainConfig(**{"max_steps": max_steps, "learning_rate": 1e-2, "warmup_steps": 2,
                            "eval_interval": 4, "eval_batches": 2, **settings})
    result = train(model, batches, lambda: RandomWindows(TOKENS, 16, 4, seed=99), config,
                   Checkpoints(folder), token_bytes=torch.full((64,), 2), progress=False, trained_on=trained_on,
                   seed=seed, stage="pretrain")
    return model, result


def test_the_schedule_warms_up_then_decays_to_the_floor():
    config = TrainConfig(max_steps=100, learning_rate=1.0, warmup_steps=10, min_lr_ratio=0.1)
    rates = [learning_rate_at(step, config) for step in range(101)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[100] == pytest.approx(0.1)
    assert rates[55] == pytest.approx(0.55)   # halfway through the cosine: halfway down


def test_warmup_stable_decay_holds_the_rate_then_decays_over_the_last_share():
    config = TrainConfig(max_steps=100, learning_rate=1.0, warmup_steps=10, min_lr_ratio=0.0,
                         schedule="wsd", decay_fraction=0.3)
    rates = [learning_rate_at(step, config) for step in range(101)]
    assert rates[9] == rates[50] == rates[70] == pytest.approx(1.0)
    assert rates[85] == pytest.approx(0.5) and rates[100] == pytest.approx(0.0)
    with pytest.raises(CourseError, match="schedule='linear' is not a valid value: it must be one of cosine, wsd"):
        TrainConfig(1, 1.0, 0, schedule="linear")


def test_annealing_on_the_documentation_starts_with_the_decay():
    """The decay of 1,500 steps x 2 batches begins at step 1,050: batch 2,100 is the first that
    reads only the documentation's repeats."""
    config = replace(PROFILES["cpu"].pretrain, max_steps=1500, grad_accum_steps=2, anneal_on_docs=True)
    meta = {"corpus": "python-docs+packages", "copies_written": 4000, "repeats_start_token": 3_000_000}
    assert annealing(config, meta) == (2100, 3_000_000)
    assert learning_rate_at(1050, config) == config.learning_rate
    assert learning_rate_at(1051, config) < config.learning_rate
    assert annealing(replace(config, anneal_on_docs=False), meta) is None
    for wrong, meta_, message in [
            (config, {**meta, "corpus": "python-docs"}, "the documentation alone: set LLM_CORPUS=python-docs"),
            (config, {**meta, "copies_written": 0}, "set data.docs_copies to 2 or more and run 02"),
            (config, {"corpus": "python-docs+packages", "copies_written": 5}, "older version .* run 02")]:
        with pytest.raises(CourseError, match=message):
            annealing(wrong, meta_)


def test_a_finished_run_is_not_taken_for_an_annealed_one(tmp_path):
    """Pretraining on token files with repeats, annealed on them; asked again without annealing,
    the finished run is refused instead of passing for a run of the other kind."""
    artifacts = tiny_artifacts(tmp_path, copies=2)
    annealed = with_settings(PROFILES["ci"], {"data.corpus": "python-docs+packages", "data.docs_copies": 2,
                                              "pretrain.max_steps": 6, "pretrain.warmup_steps": 1, "pretrain.eval_interval": 3,
                                              "pretrain.eval_batches": 1, "pretrain.anneal_on_docs": True})
    assert pretrain(annealed, artifacts, torch.device("cpu"), progress=False).step == 6
    with pytest.raises(CourseError, match=r"other inputs or settings \(the annealing on the documentation; "
                                         r"anneal_on_docs True -> False\)"):
        pretrain(with_settings(annealed, {"pretrain.anneal_on_docs": False}), artifacts, torch.device("cpu"),
                 progress=False)


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest():
    model = GPT(CONFIG)
    optimizer = make_optimizer(model, TrainConfig(1, 1e-3, 0, optimizer="muon"), torch.device("cpu"))
    muon, adamw = optimizer.optimizers
    assert isinstance(muon, Muon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    in_muon = {names[id(p)] for group in muon.param_groups for p in group["params"]}
    assert in_muon == {n for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2}
    in_adamw = {names[id(p)] for group in adamw.param_groups for p in group["params"]}
    assert "wte.weight" in in_adamw and not in_muon & in_adamw
    assert len(in_muon) + len(in_adamw) == len(list(model.parameters()))


def test_a_modern_model_with_muon_learns_and_resumes_to_the_same_weights(tmp_path):
    modern = GPTConfig(vocab_size=64, context_length=16, n_layer=1, n_head=2, n_embd=16, positions="rope",
                       norm="rmsnorm", mlp="relu2", qk_norm=True, tied_head=False, logit_softcap=15.0)
    settings = {"model_config": modern, "optimizer": "muon", "schedule": "wsd"}
    straight, result = tiny_run(tmp_path / "straight", **settings)
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path / "resumed", interrupt_at=6, **settings)
    resumed, _ = tiny_run(tmp_path / "resumed", **settings)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    _, longer = tiny_run(tmp_path / "longer", max_steps=40, **settings)
    assert longer.best_val_loss < math.log(modern.vocab_size) - 1.0


def test_only_matrices_decay():
    model = GPT(CONFIG)
    decay, no_decay = make_optimizer(model, TrainConfig(1, 1e-3, 0), torch.device("cpu")).param_groups
    assert decay["weight_decay"] > 0 and no_decay["weight_decay"] == 0
    assert all(p.dim() == 2 for p in decay["params"])
    assert any(p is model.wpe.weight for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_training_lowers_the_validation_loss(tmp_path):
    _, result = tiny_run(tmp_path, max_steps=40)
    assert result.best_val_loss < math.log(CONFIG.vocab_size) - 1.0   # a clear nat below chance
    records = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in records] == list(range(1, 41))
    assert records[-1]["val_bpb"] == pytest.approx(records[-1]["val_loss"] / math.log(2) / 2.0)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    straight, _ = tiny_run(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path / "resumed", interrupt_at=6)   # after the checkpoint of step 4
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 4
    resumed, result = tiny_run(tmp_path / "resumed")
    assert result.step == 8
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    steps = [r["step"] for r in read_log(tmp_path / "resumed" / "log.jsonl")]
    assert steps == list(range(1, 9)), "the log holds each step once"


def test_an_interrupted_fp16_run_resumes_with_its_loss_scale(tmp_path):
    """A Colab T4 trains in fp16 with a loss scaler: a resumed run continues with the saved scaler
    (its scale and its count of steps since the last overflow), as if never stopped. CPU autocast
    runs fp16 too, so this runs everywhere; tests/test_cuda.py resumes fp16 runs on a GPU."""
    straight, _ = tiny_run(tmp_path / "straight", precision="fp16")
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path / "resumed", interrupt_at=6, precision="fp16")
    saved = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert saved["step"] == 4 and saved["scaler"]["_growth_tracker"] == 4
    resumed, _ = tiny_run(tmp_path / "resumed", precision="fp16")
    assert (load_checkpoint(tmp_path / "resumed" / "last.pt")["scaler"]
            == load_checkpoint(tmp_path / "straight" / "last.pt")["scaler"])
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(CourseError, match="The loss became nan at step 5: .* kept in .*last.pt"):
        tiny_run(tmp_path, poison_at=6)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint["step"] == 4
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())


def test_a_non_finite_loss_before_any_checkpoint_says_none_is_kept(tmp_path):
    with pytest.raises(CourseError, match="at step 2: .* no checkpoint was written yet"):
        tiny_run(tmp_path, poison_at=3)
    assert not (tmp_path / "last.pt").exists()


def test_a_checkpoint_of_another_model_is_not_resumed(tmp_path):
    tiny_run(tmp_path, max_steps=4)
    other = GPT(GPTConfig(vocab_size=64, context_length=16, n_layer=2, n_head=2, n_embd=16))
    with pytest.raises(CourseError, match=r"last.pt belongs to a run with other inputs or settings \(n_layer 1 -> 2"):
        train(other, RandomWindows(TOKENS, 16, 4, seed=0), lambda: RandomWindows(TOKENS, 16, 4, seed=0),
              TrainConfig(max_steps=4, learning_rate=1e-2, warmup_steps=2, eval_interval=4, eval_batches=2),
              Checkpoints(tmp_path), progress=False, seed=0, stage="pretrain")


def test_a_changed_learning_rate_does_not_continue_the_old_run(tmp_path):
    tiny_run(tmp_path, max_steps=4)
    with pytest.raises(CourseError, match=r"\(learning_rate 0.01 -> 0.02\): delete the folder"):
        tiny_run(tmp_path, max_steps=4, learning_rate=2e-2)


def test_changed_inputs_do_not_continue_the_old_run(tmp_path):
    tiny_run(tmp_path, max_steps=4, trained_on={"tokenizer": "aaaa", "token files": "1111"})
    with pytest.raises(CourseError, match=r"\(the token files\)"):
        tiny_run(tmp_path, max_steps=4, trained_on={"tokenizer": "aaaa", "token files": "2222"})
    with pytest.raises(CourseError, match=r"\(the tokenizer\)"):
        tiny_run(tmp_path, max_steps=4, trained_on={"tokenizer": "bbbb", "token files": "1111"})


def test_reporting_settings_may_change_on_resume(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path / "run", interrupt_at=6)
    _, result = tiny_run(tmp_path / "run", eval_interval=2, eval_batches=3)   # resumes, no complaint
    assert result.step == 8


def test_precision_follows_the_device_unless_set():
    assert precision_for(torch.device("cpu")) == "fp32"
    assert precision_for(torch.device("cpu"), "bf16") == "bf16"
    with pytest.raises(CourseError, match="precision='fp8' is not one of auto, fp32, bf16, fp16"):
        precision_for(torch.device("cpu"), "fp8")


def test_accumulation_must_split_evenly_over_the_processes(tmp_path):
    with pytest.raises(CourseError, match="grad_accum_steps=3 must be a multiple of the 2 processes"):
        train(GPT(CONFIG), RandomWindows(TOKENS, 16, 4, seed=0), lambda: RandomWindows(TOKENS, 16, 4, seed=0),
              TrainConfig(max_steps=2, learning_rate=1e-3, warmup_steps=1, grad_accum_steps=3),
              Checkpoints(tmp_path), progress=False, distributed=Distributed(0, 0, 2), seed=0, stage="pretrain")


def test_running_out_of_gpu_memory_names_the_setting_to_lower(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    model = GPT(CONFIG)
    monkeypatch.setattr(model, "forward", out_of_memory)
    with pytest.raises(CourseError, match="out of memory with sft.batch_size=4: lower sft.batch_size"):
        train(model, RandomWindows(TOKENS, 16, 4, seed=0), lambda: RandomWindows(TOKENS, 16, 4, seed=0),
              TrainConfig(max_steps=2, learning_rate=1e-3, warmup_steps=1), Checkpoints(tmp_path),
              progress=False, seed=0, stage="sft")


def test_the_loss_scaler_unscales_and_steps_muon_and_adamw_together():
    """fp16 training (a T4) scales the loss; both optimizers must see the true gradients."""
    torch.manual_seed(0)
    model = GPT(CONFIG)
    optimizer = make_optimizer(model, TrainConfig(1, 1e-2, 0, optimizer="muon"), torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    inputs = torch.randint(0, 64, (2, 16))
    scaler.scale(model(inputs, inputs)[1]).backward()
    scaled = model.blocks[0].mlp.fc.weight.grad.clone()
    scaler.unscale_(optimizer)
    assert torch.allclose(model.blocks[0].mlp.fc.weight.grad * 1024.0, scaled)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    scaler.step(optimizer)
    scaler.update()
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert "blocks.0.mlp.fc.weight" in moved and "wte.weight" in moved   # Muon's and AdamW's


class FixedBatches:
    """A loader that hands out the given batches in order."""

    def __init__(self, batches):
        self.batches, self.batch_size = list(batches), len(batches[0].inputs)

    def next_batch(self):
        return self.batches.pop(0)


def masked_batches():
    """Two batches of 4 windows whose masks keep about 1 in 10 targets and 9 in 10."""
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 64, (8, 17), generator=generator)
    keep = torch.rand(8, 16, generator=generator) < torch.tensor([0.1] * 4 + [0.9] * 4).unsqueeze(1)
    return [Batch(tokens[rows, :-1], tokens[rows, 1:], keep[rows].long()) for rows in (slice(0, 4), slice(4, 8))]


def one_sgd_step(batches, micro_steps):
    """The weights after one plain gradient step (SGD, learning rate 1, no clipping: the weights
    move by exactly the gradient) and the step's loss."""
    torch.manual_seed(0)
    model = GPT(CONFIG)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    result = optimizer_step(model, optimizer, scaler, FixedBatches(batches), micro_steps, grad_clip=1e9,
                            device=torch.device("cpu"), precision="fp32")
    return torch.cat([p.detach().flatten() for p in model.parameters()]), result


def test_masked_micro_batches_add_up_to_the_step_on_the_whole_batch():
    """Accumulating two masked micro-batches takes the step of one batch holding both, with the
    same loss, although one micro-batch keeps far fewer targets than the other."""
    first, second = masked_batches()
    whole = Batch(*(torch.cat([a, b]) for a, b in zip(first, second)))
    accumulated, accumulated_result = one_sgd_step([first, second], micro_steps=2)
    at_once, at_once_result = one_sgd_step([whole], micro_steps=1)
    assert torch.allclose(accumulated, at_once, atol=1e-6)
    assert accumulated_result.loss == pytest.approx(at_once_result.loss, rel=1e-6)
    assert accumulated_result.tokens == at_once_result.tokens == 8 * 16
    with torch.no_grad():
        _, mean_of_means = GPT(CONFIG)(first.inputs, first.targets, first.loss_mask)
    assert at_once_result.loss != pytest.approx(mean_of_means.item(), rel=1e-3), "not a mean of micro-batch means"


def test_validation_reads_the_same_batches_on_any_number_of_processes(monkeypatch):
    """Validation batch k goes to process k % world_size: a process of two reads every other one
    (the test of two real processes checks that the loss is the same as with one)."""
    monkeypatch.setattr(train_module, "sum_over_processes", lambda values, *args: values)   # no other process here
    loader = RandomWindows(TOKENS, 16, 4, seed=9, rank=1, world_size=2)
    drawn = []
    read = loader.next_batch
    loader.next_batch = lambda: drawn.append(loader.next_index) or read()
    evaluate(GPT(CONFIG), loader, 5, torch.device("cpu"), "fp32", None, Distributed(rank=1, world_size=2))
    assert drawn == [1, 3]


def test_parameter_groups_can_have_learning_rates_of_their_own():
    """With one rate the groups are the decay groups; embeddings and an untied head can have their
    own peak, and the schedule scales every group's peak by the same factor."""
    model = GPT(replace(CONFIG, tied_head=False))
    one_rate = make_optimizer(model, TrainConfig(10, 1e-3, 2), torch.device("cpu"))
    assert [group["peak_lr"] for group in one_rate.param_groups] == [1e-3, 1e-3]
    config = TrainConfig(10, 1e-3, 2, optimizer="muon", embedding_learning_rate=3e-3, head_learning_rate=5e-4)
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    peaks = {names[id(p)]: group["peak_lr"] for group in optimizer.param_groups for p in group["params"]}
    assert peaks["wte.weight"] == peaks["wpe.weight"] == 3e-3 and peaks["lm_head.weight"] == 5e-4
    assert peaks["blocks.0.attn.qkv.weight"] == peaks["ln_f.bias"] == 1e-3
    assert learning_rate_at(1, config, 3e-3) == pytest.approx(3 * learning_rate_at(1, config))
    with pytest.raises(CourseError, match="the head is the embedding's matrix"):
        make_optimizer(GPT(CONFIG), config, torch.device("cpu"))


def test_train_follows_each_groups_own_rate(tmp_path):
    tiny_run(tmp_path, max_steps=4, embedding_learning_rate=1e-1)
    config = TrainConfig(4, 1e-2, 2)     # tiny_run's schedule: the last step is step 3
    groups = load_checkpoint(Checkpoints(tmp_path).last)["optimizer"]["param_groups"]
    rates = sorted((group["peak_lr"], group["lr"]) for group in groups)
    assert rates[-1] == (1e-1, pytest.approx(learning_rate_at(3, config, 1e-1))), "the embedding's own peak"
    assert rates[0] == (1e-2, pytest.approx(learning_rate_at(3, config))), "the others at learning_rate"
    assert [r["lr"] for r in read_log(Checkpoints(tmp_path).log)][-1] == pytest.approx(learning_rate_at(3, config))


def test_a_run_is_not_continued_with_another_seed(tmp_path):
    tiny_run(tmp_path, max_steps=4)
    with pytest.raises(CourseError, match=r"other inputs or settings \(the seed"):
        tiny_run(tmp_path, max_steps=8, seed=1)


def test_dropout_draws_from_the_runs_seed_and_leaves_the_process_generator_as_it_was(tmp_path):
    dropout = replace(CONFIG, dropout=0.5)
    torch.manual_seed(0)
    GPT(dropout)                          # what tiny_run draws from the process before train()
    before_train = torch.get_rng_state()
    first = tiny_run(tmp_path / "a", max_steps=4, model_config=dropout)[1]
    assert torch.equal(torch.get_rng_state(), before_train), "train() put the process's generator back"
    again = tiny_run(tmp_path / "b", max_steps=4, model_config=dropout)[1]
    other = tiny_run(tmp_path / "c", max_steps=4, model_config=dropout, seed=1)[1]
    assert first.best_val_loss == again.best_val_loss != other.best_val_loss


def test_annealing_without_its_schedule_is_refused_when_the_profile_is_made():
    from python_files.settings import SettingError

    with pytest.raises(SettingError, match="pretrain.anneal_on_docs=True is not a valid value: it anneals during "
                                           "the final decay of schedule='wsd', and the schedule is 'cosine'"):
        with_settings(PROFILES["ci"], {"pretrain.anneal_on_docs": True, "pretrain.schedule": "cosine"})
