"""A chat page in the browser, for the model you trained: the answer appears as it is written.

    python -m python_files.web_chat                  # http://127.0.0.1:7860, only this machine
    python -m python_files.web_chat --port 8000 --checkpoint sft
    python -m python_files.web_chat --share          # also a public link (Colab, or any machine)

The page is built with Gradio, a library made for demos of ML models: its chat component
shows the conversation, streams the answer, and keeps one conversation per browser tab, and the
same page runs inline in Jupyter and Colab. It uses the terminal chat's `ChatSession` (the
same generation engine, history and context-window rules); the page only shows what
`chat_turn` yields. Bad input (an empty message, a very long one, a missing model) gets one
sentence under the conversation, which stays as it was; the server keeps running.
"""

from __future__ import annotations

import argparse
import os
import threading
from typing import Iterator

from .chat import ChatSession, Completion, checkpoint_path, is_base_model
from .errors import CourseError, sentence_on_error
from .sampling import check_sampling
from .tokenizer import SPECIAL_TOKENS, TextTokenizer

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # the page sends nothing anywhere

MODEL_CHOICES = ["latest", "sft", "reinforce", "pretrain"]
# far more than any profile's context holds (ChatSession refuses, with its own sentence, a message
# that is shorter than this but does not fit with room for an answer)
MAX_MESSAGE_CHARACTERS = 4_000
EXAMPLE = "What does os.path.join do?"   # the placeholder: a question the cpu run's model answers right


class Models:
    """The checkpoints the page can talk to, each found and loaded once (at its first use) and
    shared by every tab; restart the page to pick up a model trained since."""

    def __init__(self, artifacts, tokenizer: TextTokenizer, device, seed: int, max_new_tokens: int = 100):
        self.artifacts, self.tokenizer, self.device, self.seed = artifacts, tokenizer, device, seed
        self.max_new_tokens = max_new_tokens
        self.loaded: dict[str, tuple] = {}       # (model, what it is), by the choice that named it
        self.lock = threading.Lock()             # two tabs asking at once load a model once

    def model(self, choice: str):
        """The model `choice` names (latest, sft, reinforce, pretrain, a .pt path or a run's folder),
        and what it is (see chat.checkpoint_path)."""
        from .checkpoint import load_model

        with self.lock:
            if choice not in self.loaded:
                path, description = checkpoint_path(self.artifacts, choice)   # a sentence for what is not a model
                self.loaded[choice] = load_model(path, self.device, self.tokenizer.sha256), description
            return self.loaded[choice]

    def session(self, choice: str, system: str, temperature: float, top_p: float):
        """A chat with the model of `choice` (a base model: a completion, with no history)."""
        choice = (choice or "latest").strip()
        check_sampling(temperature, None, top_p)
        # as the terminal chat: top-k 50, and the profile's seed (the same question and settings, the same answer)
        sampling = {"temperature": temperature, "top_k": 50, "top_p": top_p if top_p < 1 else None,
                    "seed": self.seed}
        model, description = self.model(choice)
        if is_base_model(description):
            return Completion(model, self.tokenizer, self.max_new_tokens, **sampling)
        return ChatSession(model, self.tokenizer, system.strip() or None, self.max_new_tokens, **sampling)


def problem_with(text: str) -> str | None:
    """One sentence about a message the page does not send to the model, or None."""
    if not text.strip():
        return f"The message is empty: type a question first, for example {EXAMPLE!r}."
    if len(text) > MAX_MESSAGE_CHARACTERS:
        return (f"The message has {len(text):,} characters, and the page takes at most "
                f"{MAX_MESSAGE_CHARACTERS:,} (the model reads a few hundred tokens): ask something shorter.")
    return None


def typed_control_tokens(text: str) -> str:
    """A sentence when `text` holds control tokens such as <|user|>: they are read as plain text."""
    typed = [token for token in SPECIAL_TOKENS if token in text]
    if not typed:
        return ""
    return (f"Your message holds {', '.join(typed)}: read as plain text, since typed control tokens "
            f"cannot start a turn of their own.")


BASE_MODEL_NOTICE = ("The base model (pretrain) continues your text as it is: it does not see the "
                     "conversation or the system message, and does not remember this turn.")


def chat_turn(models: Models, text: str, shown: list[dict], conversation: list[dict], choice: str,
              system: str, temperature: float, top_p: float) -> Iterator[tuple[list[dict], list[dict], str]]:
    """Answer `text`, yielding (the messages shown, the conversation the model sees, a notice)
    after every piece of the answer. `shown` is what the page displays; `conversation` what the
    model remembers (it may have dropped old turns to fit its context). Bad input yields the
    two unchanged, with one sentence as the notice."""
    problem = problem_with(text)
    if problem:
        yield shown, conversation, problem
        return
    try:
        session = models.session(choice, system, temperature, top_p)
    except CourseError as error:
        yield shown, conversation, str(error)
        return
    if isinstance(session, ChatSession):
        session.history = list(conversation)
    notice = typed_control_tokens(text) or ("" if isinstance(session, ChatSession) else BASE_MODEL_NOTICE)
    question = {"role": "user", "content": text.strip()}
    yield shown + [question], conversation, notice          # the question shows at once
    answer = ""
    try:
        for piece in session.ask_streaming(text.strip()):
            answer += piece if answer else piece.lstrip()    # no space before the first word
            yield shown + [question, {"role": "assistant", "content": answer}], conversation, notice
    except CourseError as error:        # too long for the context: nothing changes
        yield shown, conversation, str(error)
        return
    # the screen keeps every turn; the model remembers what ChatSession kept (it drops the oldest
    # turns that no longer fit its context), and a base model remembers nothing
    remembered = session.history if isinstance(session, ChatSession) else conversation
    yield shown + [question, {"role": "assistant", "content": answer}], remembered, notice


def chat_page(models: Models, choice: str = "latest"):
    """The page: the conversation, a message box, Send and Reset, the model, the system message,
    temperature and top-p. Each browser tab has its own conversation (Gradio's session state)."""
    import gradio as gr

    with gr.Blocks(title="Chat with your model") as page:
        gr.Markdown("### Chat with the model you trained")
        with gr.Row():
            model = gr.Dropdown(MODEL_CHOICES, value=choice, allow_custom_value=True,
                                label="model (or the path of a .pt file)")
            temperature = gr.Slider(0.0, 1.5, value=0.7, step=0.1, label="temperature (0: greedy)")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top-p (1: off)")
        system = gr.Textbox(label="system message", placeholder="for example: Answer in one sentence.")
        shown = gr.Chatbot(label="conversation", elem_id="conversation", height=360, buttons=["copy_all"])
        notice = gr.Markdown(elem_id="notice")
        with gr.Row():
            message = gr.Textbox(show_label=False, placeholder=f"Ask about the Python standard library, e.g. {EXAMPLE}",
                                 elem_id="message", scale=5)
            send = gr.Button("Send", variant="primary", elem_id="send", scale=1)
            reset = gr.Button("Reset", elem_id="reset", scale=1)
        conversation = gr.State([])     # what the model remembers, per tab (Gradio keeps one per session)
        pending = gr.State("")          # the message being answered

        def respond(text, shown_messages, remembered, chosen, system_message, temperature_value, top_p_value):
            # a generator function: Gradio sends the page each value it yields (the streaming)
            yield from chat_turn(models, text, shown_messages, remembered, chosen, system_message,
                                 temperature_value, top_p_value)

        def take_message(text):
            """Step 1, at once: empty the box and lock it (and Send) until the answer is written."""
            return gr.update(value="", interactive=False), text, gr.update(interactive=False)

        def unlock():
            return gr.update(interactive=True), gr.update(interactive=True)

        answering = []
        for event in (message.submit, send.click):
            answering.append(event(take_message, message, [message, pending, send], queue=False).then(
                # step 2, in the queue: every tab's answers share one worker ("model"), so the
                # shared models never generate for two tabs at once; each tab waits its turn
                respond, [pending, shown, conversation, model, system, temperature, top_p],
                [shown, conversation, notice], concurrency_id="model"))
            answering[-1].then(unlock, None, [message, send], queue=False)
        forget = (lambda: ([], [], "", gr.update(interactive=True), gr.update(interactive=True)),
                  None, [shown, conversation, notice, message, send])
        reset.click(*forget, queue=False, cancels=answering)        # also stops an answer being written
        shown.clear(*forget, queue=False, cancels=answering)        # the chat's own bin icon
    return page


def open_models(max_new_tokens: int = 100) -> Models:
    """The profile's artifacts and tokenizer, ready to load its checkpoints."""
    from .artifacts import Artifacts
    from .device import default_device
    from .profiles import active_profile

    profile = active_profile()
    artifacts = Artifacts.for_profile(profile.name)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    return Models(artifacts, tokenizer, default_device(), profile.seed, max_new_tokens)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with the course's model in the browser.")
    parser.add_argument("--port", type=int, default=7860, help="the port on this machine (default 7860)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every "
                             "network this machine is on)")
    parser.add_argument("--share", action="store_true", help="also a public link, through Gradio's share servers")
    parser.add_argument("--checkpoint", default="latest", help="the model chosen at first: " + ", ".join(MODEL_CHOICES)
                        + ", the path of a .pt file, or a run's folder (its best.pt)")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    return parser.parse_args(argv)


@sentence_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    models = open_models(args.max_new_tokens)
    models.model(args.checkpoint)        # a missing model stops here, with its sentence
    try:
        chat_page(models, args.checkpoint).queue().launch(server_name=args.host, server_port=args.port,
                                                          share=args.share)
    except OSError as error:             # most often: the port is taken
        raise CourseError(f"The page cannot listen on {args.host}:{args.port} ({error}): choose another port "
                          f"with --port.") from None


if __name__ == "__main__":
    main()
