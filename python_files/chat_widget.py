"""A chat in the notebook: a text box, a send button, sliders for temperature and top-p, and the
conversation, with each answer streamed in as it is written (ipywidgets).

The logic is `send`, a plain function that the widget calls and the tests call too: the widget
only shows what it returns. In a headless run (the tests, `run_notebooks`) the widget is
displayed but nobody types, so nothing else happens.
"""

from __future__ import annotations

import html
from typing import Callable

from .chat import ChatSession
from .errors import CourseError


def send(session: ChatSession, text: str, temperature: float, top_p: float,
         show: Callable[[str], None], transcript: str = "") -> str:
    """Ask `text` with these settings, calling `show` with the whole conversation after every
    piece of the answer; return the conversation. Bad input (too long, an empty message) is
    shown as one sentence, and the history is left as it was."""
    if not text.strip():
        return transcript
    transcript += f"you: {text.strip()}\nassistant: "
    session.sampling.update(temperature=temperature, top_p=top_p if top_p < 1 else None)
    try:
        answer = ""
        for piece in session.ask_streaming(text):
            answer += piece if answer else piece.lstrip()
            show(transcript + answer)
        transcript += answer + "\n\n"
    except CourseError as error:
        transcript += f"({error})\n\n"
    show(transcript)
    return transcript


def chat_widget(session: ChatSession):
    """The widget: type, press Enter or Send, watch the answer appear."""
    import ipywidgets as widgets

    box = widgets.Text(placeholder="Ask about the Python standard library, e.g. What does json.dumps do?",
                       continuous_update=False, layout=widgets.Layout(width="70%"))   # a value on Enter
    button = widgets.Button(description="Send", button_style="primary")
    reset = widgets.Button(description="Reset")
    temperature = widgets.FloatSlider(value=0.7, min=0.0, max=1.5, step=0.1, description="temperature")
    top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p")
    conversation = widgets.HTML()
    state = {"transcript": ""}

    def show(text: str) -> None:
        conversation.value = f"<pre style='white-space: pre-wrap'>{html.escape(text)}</pre>"

    def on_send(_) -> None:
        message, box.value = box.value, ""      # emptying the box fires on_enter again, with ""
        state["transcript"] = send(session, message, temperature.value, top_p.value, show, state["transcript"])

    def on_enter(change) -> None:
        if change["new"]:
            on_send(change)

    def on_reset(_) -> None:
        session.reset()
        state["transcript"] = ""
        show("")

    button.on_click(on_send)
    box.observe(on_enter, names="value")
    reset.on_click(on_reset)
    return widgets.VBox([widgets.HBox([box, button, reset]), widgets.HBox([temperature, top_p]), conversation])
