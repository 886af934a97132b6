"""Settings that cannot lie: every numeric setting refuses what it cannot honour, one seed decides
a run, and the commands' sentences for bad input and full disks."""

import errno
import io
import typing
from dataclasses import fields, replace

import pytest
import torch

from python_files.errors import CourseError
from python_files.model import GPT, GPTConfig
from python_files.profiles import PROFILES, DataConfig, MixtureSource, TokenizerConfig, with_settings
from python_files.seeds import generator_for, seed_for
from python_files.settings import SettingError

PROFILE = PROFILES["ci"]
# where 0 is a real choice (none, no decay, no warmup), and the value above the valid range where
# there is one; every numeric field must be in ZERO_MEANS_SOMETHING or refuse 0, and be in
# TOO_LARGE or in NO_UPPER_BOUND: a new field added without a thought fails the test below
ZERO_MEANS_SOMETHING = {"data.docs_copies", "data.copy_practice", "data.world_copies", "data.mixed_questions", "data.unknown_share",
                        "model.dropout",
                        "warmup_steps", "min_lr_ratio", "weight_decay", "sample_interval", "seed"}
TOO_LARGE = {"data.val_fraction": 1.0, "data.mixed_questions": 1.5, "data.unknown_share": 4.5,
             "model.dropout": 1.0, "model.n_head": 3, "min_lr_ratio": 1.5, "weight_decay": 2.0,
             "decay_fraction": 1.5, "warmup_steps": 10**9, "reinforce.samples": 5}
# data.world: its upper bound is the documentation's count, which stage 02 checks (test_world.py)
NO_UPPER_BOUND = {"data.docs_copies", "data.copy_practice", "data.world", "data.world_copies", "data.mixed_copies", "data.corpus_max_bytes", "data.tokenize_workers", "tokenizer.bpe_train_bytes",
                  "tokenizer.train_bytes", "model.vocab_size", "model.context_length", "model.n_layer",
                  "model.n_embd", "model.vocab_multiple", "model.logit_softcap", "max_steps", "learning_rate",
                  "embedding_learning_rate", "head_learning_rate",
                  "batch_size", "grad_accum_steps", "grad_clip", "eval_interval", "eval_batches",
                  "sample_interval", "seed"}


def numeric_settings() -> list[str]:
    names = [f.name for f in fields(PROFILE) if f.name == "seed"]
    for part in ("data", "tokenizer", "model", "pretrain", "sft", "reinforce"):
        config = getattr(PROFILE, part)
        hints = typing.get_type_hints(type(config))
        names += [f"{part}.{f.name}" for f in fields(config) if typing.get_origin(hints[f.name]) is not tuple
                  and {int, float} & set(typing.get_args(hints[f.name]) or [hints[f.name]])]
    return names


def short(name: str) -> str:
    """The key of the tables above: a training setting's field name, the others' dotted name."""
    part, _, field = name.partition(".")
    return field if part in ("pretrain", "sft", "reinforce") and f"{part}.{field}" not in TOO_LARGE else name


@pytest.mark.parametrize("name", numeric_settings())
def test_every_numeric_setting_refuses_minus_one_zero_and_too_large_in_one_sentence(name):
    key = short(name)
    assert key in TOO_LARGE or key in NO_UPPER_BOUND, f"{name}: say what is too large for it"
    values = [-1] + ([] if key in ZERO_MEANS_SOMETHING else [0]) + ([TOO_LARGE[key]] if key in TOO_LARGE else [])
    for value in values:
        with pytest.raises(SettingError) as refused:
            with_settings(PROFILE, {name: value})
        sentence = str(refused.value)
        assert sentence.startswith(f"{name}={value!r} is not a valid value: ") and sentence.endswith("."), sentence
        assert "\n" not in sentence
    if key in ZERO_MEANS_SOMETHING:
        with_settings(PROFILE, {name: 0})   # accepted


def test_the_other_config_classes_check_their_fields_too():
    with pytest.raises(SettingError, match="cap=0 is not a valid value: it must be at least 1"):
        MixtureSource("dolly", 0)
    with pytest.raises(SettingError, match="weight=0"):
        MixtureSource("dolly", 10, weight=0)
    with pytest.raises(SettingError, match="train_bytes=0"):
        TokenizerConfig(bpe_train_bytes=10, train_bytes=0)
    with pytest.raises(SettingError, match="val_fraction=0"):
        DataConfig(corpus="python-docs", corpus_max_bytes=None, val_fraction=0)


def test_one_seed_decides_the_initial_weights_and_two_seeds_differ():
    config = GPTConfig(vocab_size=64, context_length=16, n_layer=1, n_head=2, n_embd=16)
    first, again, other = (GPT(config, generator_for(seed, "initial weights")) for seed in (7, 7, 8))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert not torch.equal(first.wte.weight, other.wte.weight)
    assert seed_for(7, "initial weights") != seed_for(7, "pretraining batches"), "a stream for each draw"


def test_betas_are_set_as_a_pair(monkeypatch):
    from python_files.profiles import active_profile
    monkeypatch.setenv("LLM_PROFILE", "ci")
    monkeypatch.setenv("LLM_SETTINGS", "sft.betas=(0.9, 0.99) seed=3")
    profile = active_profile()
    assert profile.sft.betas == (0.9, 0.99) and profile.seed == 3
    for wrong in ("(0.9,1.0)", "(-0.1,0.9)", "(0.9,)"):
        monkeypatch.setenv("LLM_SETTINGS", f"sft.betas={wrong}")
        with pytest.raises(CourseError, match=r"LLM_SETTINGS: sft.betas=.* is not a valid value"):
            active_profile()


def test_a_full_disk_while_saving_a_checkpoint_gets_a_sentence_and_keeps_the_previous_file(tmp_path, monkeypatch):
    from python_files import checkpoint

    path = tmp_path / "checkpoints" / "pretrain" / "last.pt"
    checkpoint.save_checkpoint(path, {"step": 1})
    real_save = torch.save

    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", lambda state, file: real_save(state, FullDisk()))
    with pytest.raises(CourseError, match=r"Could not write last.pt in pretrain/ \(No space left on device; .* MB "
                                          r"free on that disk\): free space there .* is kept as it was."):
        checkpoint.save_checkpoint(path, {"step": 2})
    monkeypatch.setattr(torch, "save", lambda state, file: (_ for _ in ()).throw(
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")))
    with pytest.raises(CourseError, match="Could not write last.pt in pretrain/ .*RuntimeError"):
        checkpoint.save_checkpoint(path, {"step": 3})
    monkeypatch.undo()
    assert checkpoint.load_checkpoint(path)["step"] == 1, "the previous checkpoint survived, checksum and all"


def test_export_refuses_a_model_setting_it_does_not_map(tmp_path):
    from dataclasses import asdict, dataclass

    from python_files.export import exported_architecture

    @dataclass(frozen=True)
    class WithParallelBlocks(GPTConfig):
        parallel_blocks: bool = False      # a made-up architecture switch

    model = GPT(PROFILE.model)
    assert exported_architecture(model) == "llama"
    model.config = WithParallelBlocks(**asdict(PROFILE.model))
    with pytest.raises(CourseError, match="Export does not know the model setting parallel_blocks"):
        exported_architecture(model)


def test_export_into_a_file_gets_a_sentence(tmp_path):
    from python_files.export import check_folder

    (tmp_path / "notes.txt").write_text("x")
    for folder, says in ((tmp_path / "notes.txt", "it is a file"),
                         (tmp_path / "notes.txt" / "model", "lies under notes.txt, which is a file")):
        with pytest.raises(CourseError, match=says):
            check_folder(folder)
    check_folder(tmp_path / "new" / "model")   # a folder to make: fine


def test_a_finished_run_whose_best_checkpoint_was_deleted_writes_it_again(tmp_path):
    from test_train import tiny_run

    from python_files.checkpoint import Checkpoints, load_checkpoint

    tiny_run(tmp_path, max_steps=4)
    checkpoints = Checkpoints(tmp_path)
    checkpoints.best.unlink()
    _, result = tiny_run(tmp_path, max_steps=4)
    assert checkpoints.best.exists() and load_checkpoint(checkpoints.best)["step"] == 4
    assert result.best_val_loss == pytest.approx(load_checkpoint(checkpoints.best)["best_val_loss"])


def test_a_runs_folder_given_as_the_checkpoint_means_its_best_model(tmp_path):
    from python_files.artifacts import Artifacts
    from python_files.chat import checkpoint_path

    artifacts = Artifacts(tmp_path / "ci", "artifacts/ci")
    run = tmp_path / "my_run"
    run.mkdir()
    with pytest.raises(CourseError, match=r"The folder my_run/ holds no best.pt: name one of its checkpoints \(it has none\)"):
        checkpoint_path(artifacts, str(run))
    (run / "best.pt").write_bytes(b"")
    assert checkpoint_path(artifacts, str(run)) == (run / "best.pt", "my_run/best.pt")
    with pytest.raises(CourseError, match="There is no checkpoint at 'nowhere.pt'"):
        checkpoint_path(artifacts, "nowhere.pt")


def test_token_bytes_add_up_to_the_bytes_of_the_text_and_special_tokens_weigh_nothing():
    from python_files.tokenizer import END_OF_TEXT, TextTokenizer, train_tokenizer

    texts = ["def dumps(obj): return json text", "naïve café — 3.14 ≈ π", "x = [1, 2, 3]  # a list"] * 20
    backend = train_tokenizer(texts, 300)
    tokenizer = TextTokenizer.from_json(backend.to_str())
    token_bytes = tokenizer.token_bytes()
    for text in texts[:3]:
        assert sum(token_bytes[i] for i in tokenizer.encode(text)) == len(text.encode("utf-8"))
    assert token_bytes[tokenizer.special_id(END_OF_TEXT)] == 0


def test_the_base_models_folder_opens_a_completion_as_its_name_does(tmp_path):
    from python_files.artifacts import Artifacts
    from python_files.chat import checkpoint_path, is_base_model

    artifacts = Artifacts(tmp_path / "ci", "artifacts/ci")
    folder = artifacts.checkpoints("pretrain")
    folder.mkdir(parents=True)
    (folder / "best.pt").write_bytes(b"")
    for choice in ("pretrain", str(folder)):
        path, description = checkpoint_path(artifacts, choice)
        assert path == folder / "best.pt" and is_base_model(description), choice
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "best.pt").write_bytes(b"")
    assert not is_base_model(checkpoint_path(artifacts, str(tmp_path / "mine"))[1])


def test_a_whole_number_setting_refuses_a_float_given_in_code():
    with pytest.raises(SettingError, match=r"seed=7.0 is not a valid value: it must be a whole number"):
        with_settings(PROFILE, {"seed": 7.0})
    with pytest.raises(SettingError, match=r"sft.max_steps=7.5 is not a valid value: it must be a whole number"):
        with_settings(PROFILE, {"sft.max_steps": 7.5})
    assert with_settings(PROFILE, {"sft.learning_rate": 1}).sft.learning_rate == 1, "an int where a float goes"


def test_configs_cannot_be_changed_in_place_around_their_checks():
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        PROFILE.sft.max_steps = 0
    with pytest.raises(FrozenInstanceError):
        PROFILE.model.n_head = 0


def test_settings_a_stage_cannot_honour_are_refused_when_the_profile_is_made():
    with pytest.raises(SettingError, match="^sft.sample_interval=5 is not a valid value: only pretraining prints"):
        with_settings(PROFILE, {"sft.sample_interval": 5})
    with pytest.raises(SettingError, match="^model.vocab_size=100 is not a valid value: a byte-level tokenizer"):
        with_settings(PROFILE, {"model.vocab_size": 100})
    with pytest.raises(SettingError, match="^pretrain.anneal_on_docs=True is not a valid value: it ends pretraining "
                                           "on the documentation's repeats"):
        with_settings(PROFILE, {"pretrain.anneal_on_docs": True})
    with pytest.raises(SettingError, match="^reinforce.head_learning_rate=0.5 is not a valid value: it cannot differ "
                                           "from the embedding's rate"):
        with_settings(PROFILE, {"reinforce.head_learning_rate": 0.5})
    untied = with_settings(PROFILE, {"model.tied_head": False, "reinforce.head_learning_rate": 0.5})
    assert untied.reinforce.head_learning_rate == 0.5


def test_a_stage_refuses_files_drawn_with_another_seed(tmp_path):
    import json

    from tiny_course import tiny_artifacts

    from python_files.pretrain import pretrain

    artifacts = tiny_artifacts(tmp_path)
    meta = json.loads(artifacts.pretrain_meta.read_text())
    artifacts.pretrain_meta.write_text(json.dumps({**meta, "seed": PROFILE.seed + 1}))
    short = with_settings(PROFILE, {"pretrain.max_steps": 2, "pretrain.warmup_steps": 1, "pretrain.eval_batches": 1})
    with pytest.raises(CourseError, match=f"The token files in pretrain/ were made with seed={PROFILE.seed + 1}, and "
                                          f"this run's seed is {PROFILE.seed}: set seed={PROFILE.seed + 1}"):
        pretrain(short, artifacts, torch.device("cpu"), progress=False)
    assert pretrain(with_settings(short, {"seed": PROFILE.seed + 1}), artifacts, torch.device("cpu"),
                    progress=False).step == 2


def test_fine_tuning_applies_the_profiles_dropout_and_refuses_model_settings_it_cannot_honour():
    from python_files.sft_data import fine_tuning_context

    made = GPTConfig(vocab_size=300, context_length=64, n_layer=2, n_head=2, n_embd=32)
    model = GPT(made)
    assert fine_tuning_context(replace(made, context_length=32, dropout=0.2), model) == 32
    assert model.config.dropout == 0.2 and model.blocks[0].dropout.p == 0.2 and model.blocks[0].attn.dropout == 0.2
    with pytest.raises(CourseError, match=r"model.n_layer=4 is not what the model being fine-tuned was made with \(2\)"):
        fine_tuning_context(replace(made, n_layer=4), model)
    with pytest.raises(CourseError, match="model.context_length=128 is longer than the 64 tokens"):
        fine_tuning_context(replace(made, context_length=128), model)
    assert fine_tuning_context(replace(made, n_layer=12, n_embd=768, n_head=12), model, sizes_from_checkpoint=True)
