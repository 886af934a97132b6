"""The chat format: how a conversation becomes token ids, and which of them the model learns.

A conversation is a list of messages, ``{"role": "system" | "user" | "assistant", "content": str}``
(the Hugging Face convention). Each message is written as its role token, its content, and
the end-of-turn token::

    <|system|>You answer questions about Python.<|end|><|user|>What does json.dumps do?<|end|>
    <|assistant|>Serialize obj to a JSON formatted str.<|end|>

The loss mask is 1 exactly on the assistant's content and its ``<|end|>``: the model learns to
answer, and to stop, but not to imitate the user. Role and end tokens are inserted by id;
message contents are encoded as plain text, so a user who types ``<|assistant|>`` cannot
forge a turn. The data stages (02, 05), reinforcement, the evaluation and the chat all render
conversations here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CourseError
from .tokenizer import ASSISTANT, END_OF_TURN, SYSTEM, USER, TextTokenizer

ROLE_TOKENS = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}


@dataclass
class Rendered:
    ids: list[int]
    mask: list[int]      # 1 where the token is a target the model learns


def check_messages(messages: list[dict]) -> None:
    for message in messages:
        if message.get("role") not in ROLE_TOKENS or not isinstance(message.get("content"), str):
            raise CourseError(f"A message must have a role among {', '.join(ROLE_TOKENS)} and text "
                              f"content; got {str(message)[:80]!r}.")


def render_turn(message: dict, tokenizer: TextTokenizer) -> Rendered:
    learned = int(message["role"] == "assistant")
    content = tokenizer.encode(message["content"])
    ids = [tokenizer.special_id(ROLE_TOKENS[message["role"]]), *content,
           tokenizer.special_id(END_OF_TURN)]
    return Rendered(ids, [0] + [learned] * (len(content) + 1))


def render_conversation(messages: list[dict], tokenizer: TextTokenizer,
                        max_tokens: int | None = None) -> Rendered | None:
    """Ids and loss mask of a whole conversation.

    With `max_tokens`, a conversation that is too long is cut at a turn boundary: it keeps
    the leading turns that fit, up to the last answer among them (a question without its
    answer teaches nothing). If no answer fits, the result is None.
    """
    check_messages(messages)
    ids: list[int] = []
    mask: list[int] = []
    answered = 0    # length of the rendering up to the end of the last assistant turn
    for message in messages:
        turn = render_turn(message, tokenizer)
        if max_tokens is not None and len(ids) + len(turn.ids) > max_tokens:
            break
        ids += turn.ids
        mask += turn.mask
        answered = len(ids) if message["role"] == "assistant" else answered
    return Rendered(ids[:answered], mask[:answered]) if answered else None


def render_prompt(messages: list[dict], tokenizer: TextTokenizer) -> list[int]:
    """The ids that ask the model for the next assistant turn: the conversation so far,
    then ``<|assistant|>``. The model writes the answer and ends it with ``<|end|>``."""
    check_messages(messages)
    ids = [token for message in messages for token in render_turn(message, tokenizer).ids]
    return ids + [tokenizer.special_id(ASSISTANT)]
