"""Bad input gets one sentence that says what was wrong and what to do: corpora, settings,
damaged or mismatched files, chat and sampling settings, and where the course is run from."""

import errno
import json
import os
import subprocess
import sys

import nbformat
import pytest
import torch
from nbclient.exceptions import CellExecutionError

from python_files.artifacts import REPO_ROOT, Artifacts, atomic_write_text
from python_files.chat import ChatSession, reply
from python_files.checkpoint import load_model
from python_files.corpus import load_corpus
from python_files.errors import CourseError, sentence_on_error
from python_files.model import GPT, GPTConfig
from python_files.pretrain import pretrain
from python_files.pretrain_data import open_tokens, read_pretrain_meta
from python_files.profiles import PROFILES
from python_files.run_notebooks import run_notebook
from python_files.sampling import generate
from python_files.world import world_questions
from python_files.sft_data import all_conversations, open_sft_split, prepare_sft_data, read_sft_meta
from python_files.tokenizer import TextTokenizer, save_tokenizer, train_tokenizer
from test_sft_data import DOCS
from tiny_course import TEXTS, tiny_artifacts


# --- corpora ------------------------------------------------------------------------------------

@pytest.mark.parametrize("contents", ["", "   \n\n  \n"])
def test_an_empty_text_file_is_named_as_holding_no_text(tmp_path, contents):
    (tmp_path / "data.txt").write_text(contents)
    with pytest.raises(CourseError, match="holds no text"):
        load_corpus(str(tmp_path / "data.txt"))


def test_a_text_without_blank_lines_still_becomes_many_documents(tmp_path):
    lines = [f"Line {i} of a file that has no blank line anywhere in it at all." for i in range(2000)]
    (tmp_path / "data.txt").write_text("\n".join(lines))
    documents = load_corpus(str(tmp_path / "data.txt"))
    assert len(documents) > 20
    assert "\n".join(d.text for d in documents).split("\n") == lines, "no line is lost or cut"


def test_too_little_text_for_the_vocabulary_says_how_much_text_there_was():
    with pytest.raises(CourseError, match=r"The 1 training texts \(5 bytes\) only have material for"):
        train_tokenizer(["hello"], 1024)


# --- the artifacts folder -----------------------------------------------------------------------

def test_a_relative_artifacts_folder_is_taken_from_the_course_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_ARTIFACTS", "my_artifacts")
    monkeypatch.chdir(tmp_path)      # a notebook runs in its stage folder
    assert Artifacts.for_profile("ci").root == REPO_ROOT / "my_artifacts" / "ci"


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_folder_that_cannot_be_written_gets_one_sentence(tmp_path, monkeypatch, code):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("pathlib.Path.write_text", refuse)
    with pytest.raises(CourseError, match=r"Cannot write meta.json in pretrain/ .*set LLM_ARTIFACTS to a folder"):
        atomic_write_text(tmp_path / "pretrain" / "meta.json", "{}")


def test_a_half_written_meta_json_gets_one_sentence(tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/ci")
    artifacts.pretrain_meta.parent.mkdir(parents=True)
    artifacts.pretrain_meta.write_text('{"dtype": "uint16", "spl')
    with pytest.raises(CourseError, match="pretrain/meta.json is damaged .*run 02_pretrain_data again"):
        read_pretrain_meta(artifacts)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return tiny_artifacts(tmp_path_factory.mktemp("course"))


@pytest.mark.parametrize("keep_bytes", [0, 7])
def test_an_empty_or_cut_token_file_gets_one_sentence(course, keep_bytes, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/ci")
    artifacts.pretrain_dir.mkdir(parents=True)
    for name in ("meta.json", "val.bin"):
        (artifacts.pretrain_dir / name).write_bytes((course.pretrain_dir / name).read_bytes())
    artifacts.pretrain_tokens("train").write_bytes(course.pretrain_tokens("train").read_bytes()[:keep_bytes])
    with pytest.raises(CourseError, match=r"train.bin holds .* bytes, not the .* uint16 values .*run 02_pretrain_data again"):
        open_tokens(artifacts, "train")


def sft_files(tokenizer: TextTokenizer, artifacts: Artifacts) -> dict:
    questions = world_questions(DOCS, seed=0)
    return prepare_sft_data(all_conversations(questions, 0)[0], questions, tokenizer, artifacts, 64)


def test_a_missing_conversation_starts_file_is_named(course, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/ci")
    meta = sft_files(TextTokenizer.load(course.tokenizer), artifacts)
    artifacts.sft_file("train", "starts").unlink()
    with pytest.raises(CourseError, match="sft/train_starts.bin does not exist yet: run 05_sft_data first"):
        open_sft_split(artifacts, "train", read_sft_meta(artifacts))
    assert meta["splits"]["train"]["conversations"] > 0


# --- files that do not belong together ----------------------------------------------------------

def other_tokenizer(artifacts: Artifacts) -> None:
    """Notebook 01 run again on other text: same vocabulary size, other ids."""
    save_tokenizer(train_tokenizer([text.upper() for text in TEXTS], 400), artifacts.tokenizer)


def test_pretraining_refuses_token_files_of_another_tokenizer(tmp_path):
    artifacts = tiny_artifacts(tmp_path)
    other_tokenizer(artifacts)
    with pytest.raises(CourseError, match="token files in pretrain/ were made with another tokenizer .*run 02_pretrain_data again"):
        pretrain(PROFILES["ci"], artifacts, torch.device("cpu"), progress=False)


def test_fine_tuning_data_refuses_a_tokenizer_the_pretraining_data_was_not_made_with(tmp_path):
    artifacts = tiny_artifacts(tmp_path)
    other_tokenizer(artifacts)
    with pytest.raises(CourseError, match="pretraining token files in pretrain/ were made with another tokenizer"):
        sft_files(TextTokenizer.load(artifacts.tokenizer), artifacts)


def test_a_model_is_not_loaded_for_another_tokenizer(tmp_path):
    from test_train import tiny_run

    tiny_run(tmp_path, max_steps=4, trained_on={"tokenizer": "a" * 64})
    assert load_model(tmp_path / "last.pt", tokenizer_sha256="a" * 64).config.n_layer == 1
    with pytest.raises(CourseError, match="last.pt was trained with another tokenizer"):
        load_model(tmp_path / "last.pt", tokenizer_sha256="b" * 64)


# --- chat and sampling --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chat_parts(course):
    tokenizer = TextTokenizer.load(course.tokenizer)
    torch.manual_seed(0)
    return GPT(GPTConfig(tokenizer.vocab_size, context_length=48, n_layer=1, n_head=2, n_embd=16)), tokenizer


def test_a_message_too_long_for_the_context_leaves_the_history_as_it_was(chat_parts):
    chat = ChatSession(*chat_parts, max_new_tokens=8)
    chat.ask("first question")
    before = list(chat.history)
    with pytest.raises(CourseError, match="too long for the context of 48 tokens"):
        chat.ask("word " * 100)
    assert chat.history == before, "nothing dropped, the refused message not kept"
    chat.ask("next question")
    assert chat.history[-2] == {"role": "user", "content": "next question"}, "the next question is asked"


def test_a_prompt_longer_than_the_context_is_refused_not_answered_with_nothing(chat_parts):
    model, tokenizer = chat_parts
    with pytest.raises(CourseError, match="leaves no room for an answer"):
        reply(model, tokenizer, [{"role": "user", "content": "word " * 100}])


@pytest.mark.parametrize("settings, sentence", [
    ({"temperature": -0.5}, "temperature=-0.5 must be 0"),
    ({"temperature": float("nan")}, "temperature=nan must be 0"),
    ({"top_k": 0}, "top_k=0 must be at least 1"),
    ({"top_p": 0.0}, "top_p=0.0 must be above 0"),
    ({"top_p": 1.5}, "top_p=1.5 must be above 0 and at most 1"),
])
def test_meaningless_sampling_settings_get_one_sentence(chat_parts, settings, sentence):
    model, _ = chat_parts
    with pytest.raises(CourseError, match=sentence):
        generate(model, [1, 2, 3], 5, **{"temperature": 1.0, **settings})


# --- where the course runs from -----------------------------------------------------------------

def test_the_course_imports_from_any_folder(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", "import python_files.checkpoint, python_files.artifacts as a; "
                             "print(a.REPO_ROOT)"], cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, f"`pip install -e .` makes python_files importable: {result.stderr}"
    assert result.stdout.strip() == str(REPO_ROOT)


def test_a_failing_notebook_is_saved_without_the_outputs_of_an_older_run(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('one')"),
                                               nbformat.v4.new_code_cell("raise ValueError('broken')"),
                                               nbformat.v4.new_code_cell("print('three')")])
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", text="three, from an older run\n")]
    notebook.cells[2].execution_count = 3
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(CellExecutionError):
        run_notebook(path)
    saved = json.loads(path.read_text())["cells"]
    assert "".join(saved[0]["outputs"][0]["text"]) == "one\n"
    assert "broken" in json.dumps(saved[1]["outputs"])
    assert saved[2]["outputs"] == [] and saved[2]["execution_count"] is None


@pytest.mark.parametrize("rank, shown", [("0", "Out of memory on this GPU."),
                                         ("3", "rank 3: Out of memory on this GPU.")])
def test_every_process_under_torchrun_says_its_sentence(monkeypatch, capsys, rank, shown):
    """A process other than the first that fails alone is seen, with its rank."""
    @sentence_on_error
    def failing_main():
        raise CourseError("Out of memory on this GPU.")

    monkeypatch.setenv("RANK", rank)
    with pytest.raises(SystemExit) as exit_status:
        failing_main()
    assert exit_status.value.code == 1
    assert capsys.readouterr().err.strip() == shown
