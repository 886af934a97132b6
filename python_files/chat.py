"""Talking to a model: one answer (`reply`), a conversation that keeps its history within the
context (`ChatSession`), a base model's completion (`Completion`), and the checkpoint a choice
names (`checkpoint_path`). Conversations are rendered in the chat format of chat_format.py.

Run as a program, it is a chat in the terminal with the profile's fine-tuned model, the answer
appearing as it is written (``python -m python_files.chat --help`` lists the options; piped
input is answered line by line, only the answers printed)::

    python -m python_files.chat
    echo "What does json.dumps do?" | python -m python_files.chat
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Iterable, Iterator, TextIO

from .chat_format import render_prompt
from .errors import CourseError, sentence_on_error
from .sampling import check_sampling, generate, stream
from .tokenizer import END_OF_TURN, TextTokenizer

# --- talking to a model ----------------------------------------------------------------------

def reply(model, tokenizer: TextTokenizer, messages: list[dict], max_new_tokens: int = 100,
          temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
          seed: int | None = None) -> str:
    """The model's next assistant turn after `messages` (greedy unless a temperature is given;
    sampled, with `seed` for the same draws every time)."""
    end_of_turn = tokenizer.special_id(END_OF_TURN)
    new = generate(model, render_prompt(messages, tokenizer), max_new_tokens, temperature, top_k,
                   top_p, stop_ids={end_of_turn}, seed=seed)
    # control tokens inside an answer are noise: only its text goes into the history
    return tokenizer.decode(new, skip_special=True).strip()


def stream_text(tokenizer: TextTokenizer, ids: Iterable[int]) -> Iterator[str]:
    """The text of `ids` in pieces, as the ids arrive. A character of several bytes may span
    tokens: while the text so far ends in half a character (decoded as U+FFFD), nothing is
    shown, so a piece never holds a broken character."""
    seen: list[int] = []
    shown = ""
    for token in ids:
        seen.append(token)
        text = tokenizer.decode(seen, skip_special=True)
        if not text.endswith("\ufffd"):
            yield text[len(shown):]
            shown = text
    text = tokenizer.decode(seen, skip_special=True)
    if text != shown:          # the answer ended inside a character: show what there is
        yield text[len(shown):]


class ChatSession:
    """A multi-turn conversation that keeps its history within the model's context window.

    When the history plus room for an answer no longer fits, the oldest turns are dropped
    (the system message, if any, is kept): the model forgets the start of a long chat. A
    message too long to fit even alone is refused with one sentence, and the history is left
    as it was. Sampling settings (`temperature`, `top_k`, `top_p`, `seed`) default to greedy; with
    a `seed`, every answer is drawn from a generator seeded anew by it (the same question and
    settings, the same answer).
    """

    def __init__(self, model, tokenizer: TextTokenizer, system: str | None = None,
                 max_new_tokens: int = 100, **sampling):
        self.model, self.tokenizer = model, tokenizer
        self.system = [{"role": "system", "content": system}] if system else []
        self.history: list[dict] = []
        self.max_new_tokens = max_new_tokens
        self.sampling = {"temperature": 0.0, **sampling}

    def ask(self, text: str) -> str:
        return "".join(self.ask_streaming(text)).strip()

    def ask_streaming(self, text: str) -> Iterator[str]:
        """The answer to `text` in pieces, as it is written. What was written goes into the
        history, also when the caller stops early (Ctrl-C)."""
        history = self.fitted(self.history + [{"role": "user", "content": text}])
        ids = stream(self.model, render_prompt(self.system + history, self.tokenizer), self.max_new_tokens,
                     stop_ids={self.tokenizer.special_id(END_OF_TURN)}, **self.sampling)
        answer: list[str] = []
        try:
            for piece in stream_text(self.tokenizer, ids):
                answer.append(piece)
                yield piece
        finally:
            self.history = history + [{"role": "assistant", "content": "".join(answer).strip()}]

    def reset(self, system: str | None = None) -> None:
        """Forget the conversation; with `system`, also replace the system message."""
        self.history = []
        if system is not None:
            self.system = [{"role": "system", "content": system}] if system else []

    def fitted(self, history: list[dict]) -> list[dict]:
        """`history` without its oldest turns, until it leaves room for an answer."""
        budget = self.model.config.context_length - self.max_new_tokens
        while len(history) > 1 and self.prompt_length(history) > budget:
            history = history[2:] if history[0]["role"] == "user" else history[1:]
        if self.prompt_length(history) > budget:
            raise CourseError(f"The message is too long for the context of "
                              f"{self.model.config.context_length} tokens with room for an answer of "
                              f"{self.max_new_tokens}: ask something shorter.")
        return history

    def prompt_length(self, history: list[dict]) -> int:
        return len(render_prompt(self.system + history, self.tokenizer))


class Completion:
    """A base model (pretrained only) knows no chat format: each message is continued as plain
    text, with no history."""

    def __init__(self, model, tokenizer: TextTokenizer, max_new_tokens: int = 100, **sampling):
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens = max_new_tokens
        self.sampling = {"temperature": 0.0, **sampling}

    def ask_streaming(self, text: str) -> Iterator[str]:
        ids = stream(self.model, self.tokenizer.encode(text), self.max_new_tokens,
                     stop_ids={self.tokenizer.special_id("<|endoftext|>")}, **self.sampling)
        yield from stream_text(self.tokenizer, ids)

    def reset(self, system: str | None = None) -> None:
        """Nothing to forget: a completion has no history."""


# --- the terminal chat -------------------------------------------------------------------------

COMMANDS = ("commands: /reset forgets the conversation; /system TEXT sets the system message (and "
            "resets); /temp X sets the temperature (0: greedy); /help; /quit or Ctrl-D ends; "
            "Ctrl-C stops an answer")


# every character str.splitlines() breaks at, as a space: a piped answer stays on its line
LINE_BREAKS = {ord(c): " " for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def run_chat(session, lines: Iterable[str], interactive: bool, out: TextIO = sys.stdout,
             err: TextIO = sys.stderr) -> None:
    """Answer each line (or run it as a command) until the lines end or /quit. Answers go to
    `out`, one per line; everything else to `err`, so that piped output holds only answers."""
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if not is_utf8(text):
            print("That line is not UTF-8 text (bytes of another encoding?), so it was skipped: "
                  "send UTF-8.", file=err)
            continue
        if text.startswith("/"):
            if not run_command(session, text, err):
                return
            continue
        answer_line(session, text, interactive, out, err)


def is_utf8(text: str) -> bool:
    """False for a line read from bytes that are not UTF-8 (they arrive as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def answer_line(session, text: str, interactive: bool, out: TextIO, err: TextIO) -> None:
    if interactive:
        out.write("assistant: ")
    try:
        answer = session.ask_streaming(text)
        try:
            shown = ""
            for piece in answer:
                piece = piece if shown else piece.lstrip()   # no spaces before the first word
                if not interactive:                          # piped: one answer, one line
                    piece = piece.translate(LINE_BREAKS)
                shown += piece
                out.write(piece)
                out.flush()
        except KeyboardInterrupt:       # Ctrl-C stops this answer, not the chat
            out.write(" [stopped]")
        finally:
            answer.close()              # the history keeps what was written
    except CourseError as error:        # too long for the context: the history is untouched
        if interactive:
            out.write("\n")
        print(error, file=err)
        return
    out.write("\n")
    out.flush()


def run_command(session, text: str, err: TextIO) -> bool:
    """Carry out a /command; False for /quit."""
    name, _, argument = text.partition(" ")
    if name == "/quit":
        return False
    if name == "/reset":
        session.reset()
        print("(the conversation is forgotten)", file=err)
    elif name == "/system":
        session.reset(system=argument.strip())
        print("(new system message; the conversation is forgotten)", file=err)
    elif name == "/temp":
        set_temperature(session, argument, err)
    elif name == "/help":
        print(COMMANDS, file=err)
    else:
        print(f"Unknown command {name}. {COMMANDS}", file=err)
    return True


def set_temperature(session, argument: str, err: TextIO) -> None:
    try:
        temperature = float(argument)
        check_sampling(temperature, None, None)
    except ValueError:
        print(f"/temp needs a number (0 for greedy), e.g. /temp 0.7; got {argument!r}.", file=err)
    except CourseError as error:
        print(error, file=err)
    else:
        session.sampling["temperature"] = temperature
        print(f"(temperature {temperature:g})", file=err)


def typed_lines() -> Iterator[str]:
    """What the user types at the prompt, until Ctrl-D; Ctrl-C at the prompt gives a new prompt."""
    while True:
        try:
            yield input("you: ")
        except KeyboardInterrupt:
            print()
        except EOFError:
            print()
            return


CHECKPOINT_STAGES = {"sft": "06_sft", "reinforce": "06b_reinforcement", "pretrain": "04_pretraining"}
CHOICES = "latest, sft, reinforce, pretrain, the path of a .pt file, or a run's folder"


def latest_chat_model(artifacts) -> tuple[Path, str]:
    """The model to talk to and evaluate, and what it is: the end of reinforcement (06b) when
    it started from the current fine-tuned model, otherwise the best fine-tuned checkpoint (06).

    Reinforcement keeps its last state, not its lowest validation loss: that loss measures
    how closely it still imitates the reference answers, which reinforcement trades for reward.
    """
    from .checkpoint import Checkpoints, file_sha256, load_checkpoint

    finetuned = artifacts.require(Checkpoints(artifacts.checkpoints("sft")).best, "06_sft")
    reinforced = Checkpoints(artifacts.checkpoints("reinforce")).last
    if reinforced.exists():
        checkpoint = load_checkpoint(reinforced)
        if checkpoint.get("trained_on", {}).get("fine-tuned model") == file_sha256(finetuned):
            return reinforced, f"fine-tuned, then reinforced for {checkpoint['step']} steps (06b)"
    return finetuned, "fine-tuned (06)"


def is_base_model(description: str) -> bool:
    """Whether the checkpoint `checkpoint_path` described is the pretrained model of 04, which
    continues text and knows no chat format (also when its folder was named)."""
    return description == "pretrain"


def checkpoint_path(artifacts, choice: str) -> tuple[Path, str]:
    """The checkpoint that `choice` names, and what it is: "latest", a stage of CHECKPOINT_STAGES,
    a .pt file, or a run's folder (its best.pt; a stage's own folder as that stage). The terminal
    chat, the chat page and the export all ask here, so they take and refuse the same choices."""
    from .checkpoint import Checkpoints

    if choice == "latest":
        return latest_chat_model(artifacts)
    if choice in CHECKPOINT_STAGES:
        folder = Checkpoints(artifacts.checkpoints(choice))
        return artifacts.require(folder.last if choice == "reinforce" else folder.best,
                                 CHECKPOINT_STAGES[choice]), choice
    path = Path(choice)
    if path.is_dir():
        stage = next((stage for stage in CHECKPOINT_STAGES
                      if artifacts.checkpoints(stage).resolve() == path.resolve()), None)
        if stage:
            return checkpoint_path(artifacts, stage)
        if (path / "best.pt").is_file():
            return path / "best.pt", f"{path.name}/best.pt"
        found = sorted(p.name for p in path.glob("*.pt"))
        raise CourseError(f"The folder {path.name}/ holds no best.pt: name one of its checkpoints "
                          f"({', '.join(found) or 'it has none'}) as {path.name}/NAME.pt, or choose "
                          f"{CHOICES}.")
    if not path.is_file():
        raise CourseError(f"There is no checkpoint at {choice!r}: choose {CHOICES}.")
    return path, path.name


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat in the terminal with the course's model.")
    parser.add_argument("--checkpoint", default="latest",
                        help="latest (the newest fine-tuned model: after reinforcement when it ran, "
                             "default), sft (the fine-tuned model), reinforce, pretrain (the base "
                             "model: it continues text), the path of a .pt file, or a run's folder "
                             "(its best.pt)")
    parser.add_argument("--temperature", type=float, default=0.7, help="0: greedy (default 0.7)")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None,
                        help="the same seed gives the same answers (default: the profile's seed)")
    parser.add_argument("--system", default=None, help="a system message")
    return parser.parse_args(argv)


def open_session(args: argparse.Namespace):
    """The chat (or, for a base model, the completion) that the arguments ask for, and the
    model's description."""
    from .artifacts import Artifacts
    from .checkpoint import load_model
    from .device import default_device
    from .profiles import active_profile

    profile = active_profile()
    artifacts = Artifacts.for_profile(profile.name)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    path, description = checkpoint_path(artifacts, args.checkpoint)
    model = load_model(path, default_device(), tokenizer.sha256)
    sampling = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
                "seed": profile.seed if args.seed is None else args.seed}
    check_sampling(args.temperature, args.top_k, args.top_p)
    if is_base_model(description):
        return Completion(model, tokenizer, args.max_new_tokens, **sampling), description
    return ChatSession(model, tokenizer, args.system, args.max_new_tokens, **sampling), description


@sentence_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    session, description = open_session(args)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting with the {description} model (temperature {args.temperature:g}, top-k "
              f"{args.top_k}). {COMMANDS}.")
    # piped bytes that are not UTF-8 come through as lone surrogates, for run_chat to refuse
    # line by line, instead of a decoding error that would end the chat
    piped = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
    run_chat(session, typed_lines() if interactive else piped, interactive)


if __name__ == "__main__":
    main()
