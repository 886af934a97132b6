"""The terminal chat, `python -m python_files.chat`: piped input, commands, Ctrl-C, a base model,
missing artifacts, and streamed text that never cuts a character."""

import io
import os
import shutil
import subprocess
import sys

import pytest

import python_files.chat as chat_module
from python_files.artifacts import REPO_ROOT
from python_files.chat import ChatSession, run_chat, stream_text
from python_files.tokenizer import TextTokenizer
from tiny_course import tiny_artifacts, tiny_fine_tuned_model


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Tiny artifacts with a briefly trained model as both the pretrained and the fine-tuned one."""
    root = tmp_path_factory.mktemp("chat")
    artifacts = tiny_artifacts(root)
    tokenizer = TextTokenizer.load(artifacts.tokenizer)
    model = tiny_fine_tuned_model(artifacts)
    shutil.copytree(artifacts.checkpoints("sft"), artifacts.checkpoints("pretrain"))
    return root, model, tokenizer


def chat(root, typed: str, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_PROFILE": "ci", "LLM_ARTIFACTS": str(root)}
    return subprocess.run([sys.executable, "-m", "python_files.chat", "--max-new-tokens", "8", *options],
                          input=typed, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_piped_questions_get_one_answer_line_each_and_nothing_else(course):
    result = chat(course[0], "What does json.dumps do?\n\nHello!\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2, "one line per question, blank lines skipped"
    assert "you:" not in result.stdout and "assistant:" not in result.stdout


def test_a_line_that_is_not_utf8_gets_one_sentence_and_the_chat_goes_on(course):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_PROFILE": "ci", "LLM_ARTIFACTS": str(course[0])}
    result = subprocess.run([sys.executable, "-m", "python_files.chat", "--max-new-tokens", "8"],
                            input="Hello!\ncaf\u00e9 in latin-1\nHi\n".encode("latin-1"), cwd=REPO_ROOT, env=env,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.decode().splitlines()) == 2, "the two UTF-8 lines are answered"
    assert result.stderr.decode().strip() == ("That line is not UTF-8 text (bytes of another encoding?), so it "
                                              "was skipped: send UTF-8.")


def test_the_same_seed_gives_the_same_answers(course):
    first, second = (chat(course[0], "Hello!\n", "--seed", "3").stdout for _ in range(2))
    assert first == second


def test_commands_change_the_chat_and_quit_ends_it(course):
    result = chat(course[0], "/temp 0\n/help\n/system Be brief.\nHi\n/temp -1\n/temp warm\n/reset\n/quit\nnever asked\n")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1, "only 'Hi' is answered; /quit ends before the last line"
    assert "commands: /reset" in result.stderr and "(temperature 0)" in result.stderr
    assert "temperature=-1.0 must be 0" in result.stderr and "/temp needs a number" in result.stderr


def test_a_message_too_long_gets_one_sentence_and_the_chat_goes_on(course):
    result = chat(course[0], "word " * 200 + "\nHi\n")
    assert result.returncode == 0
    assert "too long for the context of 64 tokens" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_the_base_model_continues_text(course):
    result = chat(course[0], "Function number\n", "--checkpoint", "pretrain", "--temperature", "0")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1


def test_missing_artifacts_name_the_notebook_to_run(tmp_path):
    result = chat(tmp_path, "Hi\n")
    assert result.returncode == 1
    assert result.stderr.strip() == ("$LLM_ARTIFACTS/ci/tokenizer/tokenizer.json does not exist yet: run "
                                     "01_tokenizer first (with the same LLM_PROFILE).")


def test_ctrl_c_stops_the_answer_keeps_what_was_written_and_the_chat_goes_on(course, monkeypatch):
    _, model, tokenizer = course
    real_stream = chat_module.stream
    calls = {"n": 0}

    def interrupted_once(*args, **kwargs):
        calls["n"] += 1
        for count, token in enumerate(real_stream(*args, **kwargs)):
            if calls["n"] == 1 and count == 3:
                raise KeyboardInterrupt          # as if Ctrl-C came while the model was writing
            yield token

    monkeypatch.setattr(chat_module, "stream", interrupted_once)
    session = ChatSession(model, tokenizer, max_new_tokens=8, temperature=1.0, seed=0)
    out, err = io.StringIO(), io.StringIO()
    run_chat(session, ["first question", "second question"], interactive=False, out=out, err=err)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("[stopped]") and not lines[1].endswith("[stopped]")
    assert [m["role"] for m in session.history] == ["user", "assistant", "user", "assistant"]
    assert session.history[1]["content"] == lines[0].removesuffix(" [stopped]").strip()


def test_streamed_text_never_cuts_a_character_in_half(course):
    tokenizer = course[2]
    text = "naïve café, 日本語 and 😀 emoji"
    pieces = list(stream_text(tokenizer, tokenizer.encode(text)))
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)
    assert len(pieces) > 5, "the text arrives in many pieces"


def test_a_streamed_answer_is_the_answer(course):
    _, model, tokenizer = course
    streamed = ChatSession(model, tokenizer, max_new_tokens=8)
    answer = "".join(streamed.ask_streaming("Hello!")).strip()
    assert answer == chat_module.reply(model, tokenizer, [{"role": "user", "content": "Hello!"}], 8)
    assert streamed.history[-1] == {"role": "assistant", "content": answer}


def test_the_notebook_chat_streams_into_the_conversation_and_keeps_bad_input_out(course):
    from python_files.chat_widget import chat_widget, send

    _, model, tokenizer = course
    session = ChatSession(model, tokenizer, max_new_tokens=8)
    shown = []
    transcript = send(session, "Hello!", temperature=0.0, top_p=1.0, show=shown.append)
    answer = chat_module.reply(model, tokenizer, [{"role": "user", "content": "Hello!"}], 8)
    assert transcript == f"you: Hello!\nassistant: {answer}\n\n"
    assert all(later.startswith(earlier) for earlier, later in zip(shown, shown[1:])), "the answer grows in place"
    assert session.sampling["temperature"] == 0.0 and session.sampling["top_p"] is None
    transcript = send(session, "word " * 200, 0.7, 0.9, shown.append, transcript)
    assert transcript.endswith("(The message is too long for the context of 64 tokens with room for an answer "
                               "of 8: ask something shorter.)\n\n")
    assert len(session.history) == 2, "the refused message is not in the history"
    assert send(session, "   ", 0.7, 0.9, shown.append, transcript) == transcript
    widget = chat_widget(session)
    assert len(widget.children) == 3


def test_a_piped_answer_stays_on_one_line_whatever_the_model_writes(course, monkeypatch):
    _, model, tokenizer = course
    monkeypatch.setattr(chat_module, "stream_text", lambda tokenizer, ids: iter(["two\nlines", "\x0band\rmore"]))
    out = io.StringIO()
    run_chat(ChatSession(model, tokenizer, max_new_tokens=8), ["question"], interactive=False, out=out, err=io.StringIO())
    assert out.getvalue() == "two lines and more\n"
