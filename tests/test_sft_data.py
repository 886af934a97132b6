"""The SFT set: docstring summaries, the split by object, and the rendered files."""

import json
import re
from pathlib import Path

import pytest

from python_files.artifacts import Artifacts
from python_files.chat_format import render_conversation
from python_files.corpus import PYTHON_DOCS
from python_files.document import Document
from python_files.errors import CourseError
from python_files.profiles import MixtureSource
from python_files.documentation import (COURSE_CONVERSATIONS, QUESTION_TEMPLATES, SMALL_TALK_COPIES,
                                        UNTAUGHT_PHRASINGS, Conversation, docstring_sentences, docstring_summary,
                                        facts_of, follow_up, made_up_names, one_edit, own_conversations,
                                        pretraining_conversations)
from python_files.world import world_questions
from python_files.sft_data import (all_conversations, left_out, mixture_plan, open_sft_split, prepare_sft_data,
                                   read_questions, read_sft_meta)
from python_files.tokenizer import TextTokenizer, save_tokenizer, train_tokenizer


def doc(name, body):
    return Document(name, f"{name}(x)\n\n{body}", PYTHON_DOCS)


DOCS = [doc(f"mod{i % 7}.function_{i}", f"Return the value number {i} of the table. More text.")
        for i in range(200)] + [doc("mod0.tiny", "Hi."), Document("topic:if", "if\n\nThe if statement.", PYTHON_DOCS)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(train_tokenizer([d.text for d in DOCS] * 3, 400), path)
    return TextTokenizer.load(path)


def test_the_summary_is_the_first_sentence_after_the_heading():
    assert docstring_summary("f(x)\n\nReturn x squared. Raises on strings.\n\nMore.") == "Return x squared."
    assert docstring_summary("f(x)\n\nSplit the\n    text on commas.") == "Split the text on commas."
    assert docstring_summary("f(x)\n\nTODO") is None          # too short to answer with
    assert docstring_summary("f(x)\n\n" + "word " * 100) is None   # too long to be a summary


def test_questions_are_split_by_object_and_made_up_objects_do_not_exist():
    questions = world_questions(DOCS, seed=0, size=120)
    names = {split: {q.name for q in qs if q.known} for split, qs in questions.items()}
    world = {f"mod{i % 7}.function_{i}" for i in range(120)}
    held_out = {q.name for q in questions["test"] if q.group == "held-out"}
    assert len(held_out) == 60 and held_out <= world, "the world's held-out half"
    assert not held_out & (names["train"] | names["val"]), "fine-tuning never asks about a held-out object"
    assert not names["train"] & names["val"] and len(names["val"]) == 6, "a tenth of the fine-tuning half validates"
    assert names["train"] | names["val"] | held_out == world
    outside = {q.name for q in questions["test"] if q.group == "outside"}
    assert len(outside) == 80 and not outside & world, "the documented objects after the world's 120"
    real = {d.name for d in DOCS}
    made_up = [q for qs in questions.values() for q in qs if not q.known]
    assert made_up and all(q.name not in real and "don't know" in q.answer for q in made_up)
    assert sum(not q.known for q in questions["test"]) == 120       # the default made_up_in_test
    train_known = [q for q in questions["train"] if q.known]
    assert len(train_known) == 54 * len(QUESTION_TEMPLATES), "every taught phrasing of every training object"
    assert sum(not q.known for q in questions["train"]) == round(len(train_known) / 4), "one made-up per four"
    assert all(q.answer.startswith("Return the value number") for q in train_known)


def test_the_unknown_share_sets_how_many_made_up_names_fine_tuning_asks_and_leaves_the_test_alone():
    counts = {}
    for share in (0.0, 1.0):
        questions = world_questions(DOCS, seed=0, size=120, unknown_share=share)
        known = sum(q.known for q in questions["train"])
        counts[share] = (sum(not q.known for q in questions["train"]), known,
                         sum(not q.known for q in questions["test"]))
    assert counts[0.0] == (0, counts[1.0][1], 120)
    assert counts[1.0] == (counts[1.0][1], counts[1.0][1], 120), "one made-up name per documented question"


def test_held_out_objects_are_asked_once_taught_and_once_untaught_and_no_untaught_phrasing_is_trained():
    questions = world_questions(DOCS, seed=0, size=120)
    held_out = [q for q in questions["test"] if q.group == "held-out"]
    assert sorted(q.taught for q in held_out) == [False] * 60 + [True] * 60
    assert all(any(p.format(name=q.name) == q.question for p in UNTAUGHT_PHRASINGS) for q in held_out if not q.taught)
    assert len(UNTAUGHT_PHRASINGS) >= 8 and not set(UNTAUGHT_PHRASINGS) & set(QUESTION_TEMPLATES)
    trained = {m["content"] for split in ("train", "val") for c in own_conversations(questions, 0)[split]
               for m in c.messages if m["role"] == "user"}
    names = {q.name for split in questions.values() for q in split}
    assert not {p.format(name=name) for p in UNTAUGHT_PHRASINGS for name in names} & trained
    assert world_questions(DOCS, seed=0, size=120) == questions, "the same seed asks the same questions"



def test_mixed_training_reads_questions_about_the_fine_tuning_half_only():
    questions = world_questions(DOCS, seed=0, size=120)
    mixed = pretraining_conversations(questions, 1.0, seed=0)
    asked = " ".join(m["content"] for c in mixed for m in c.messages if m["role"] == "user")
    kept_out = {q.name for q in questions["test"] + questions["val"] if q.known}
    assert len(mixed) == len(own_conversations(questions, 0)["train"]), "share 1.0: every training conversation"
    assert not any(re.search(rf"(?<![\w.]){re.escape(name)}(?!\.?\w)", asked) for name in kept_out), \
        "no question about a held-out or validation object before notebook 07"
    assert len(pretraining_conversations(questions, 0.5, seed=0)) == round(len(mixed) / 2)

REAL = {"json.dumps", "json.loads", "json.JSONDecoder", "json.JSONDecoder.decode", "os.path.join",
        "collections.OrderedDict.move_to_end"}


def test_made_up_names_come_in_four_shapes_and_none_is_real():
    names = made_up_names(REAL, 400, seed=0)
    assert len(set(names)) == 400 and not set(names) & REAL
    last_parts = [name.rsplit(".", 1)[-1] for name in names]
    methods = [n for n in names if n.rsplit(".", 1)[0] in {"json.JSONDecoder", "collections.OrderedDict"}]
    classes = [part for part in last_parts if part[0].isupper()]
    one_edit_away = [n for n in names if any(n.rsplit(".", 1)[0] == r.rsplit(".", 1)[0]
                                             and n.rsplit(".", 1)[-1][0] == r.rsplit(".", 1)[-1][0]
                                             and abs(len(n) - len(r)) <= 1 and "_" not in n[-4:]
                                             and n not in methods for r in REAL)]
    assert len(methods) >= 50 and len(classes) >= 50 and len(one_edit_away) >= 30


def test_one_edit_swaps_drops_or_doubles_one_letter():
    import random
    rng = random.Random(0)
    for _ in range(50):
        edited = one_edit("dumps", rng)
        assert edited != "dumps" and edited[0] == "d" and abs(len(edited) - 5) <= 1
        assert sorted(edited) == sorted("dumps") or len(edited) != 5


def test_follow_ups_come_from_the_rest_of_the_docstring():
    import random
    text = ("f(x)\n\nSquare a number. The argument may be any real number. Returns x times x.\n\n"
            "    >>> f(2)\n    4")
    assert docstring_sentences(text) == ["Square a number.", "The argument may be any real number.",
                                         "Returns x times x."]
    question, answer = follow_up(facts_of(doc("f", text.partition("\n\n")[2]), set()), random.Random(0))
    assert "return" in question.lower() and answer == "Returns x times x."
    # a summary that already says what it returns gets "tell me more" and the next sentence
    question, answer = follow_up(facts_of(doc("f", "Return x squared. Works for complex numbers too."), set()),
                                 random.Random(0))
    assert "return" not in question.lower() and answer == "Works for complex numbers too."
    assert follow_up(facts_of(doc("f", "Return x squared."), set()), random.Random(0)) is None


def test_own_conversations_hold_follow_ups_greetings_and_small_talk():
    questions = world_questions([doc(f"mod{i % 7}.function_{i}", f"Return the value number {i}. It is an int.")
                                for i in range(400)], seed=0)
    conversations = own_conversations(questions, 0)
    train = [c.messages for c in conversations["train"]]
    assert any(len(m) == 4 and m[2]["content"] in ("Tell me more.", "Can you say more about it?",
               "What else should I know about it?", "Go on.", "Anything else?") and m[3]["content"] ==
               "It is an int." for m in train)
    greeted = [m for m in train if len(m) >= 4 and m[0]["content"].rstrip("!").lower() in ("hello", "hi", "hey")
               and "function_" in m[2]["content"]]
    assert 0 < len(greeted) < len(train) / 5
    hello = [m for m in train if m[0]["content"] == "Hello!" and len(m) == 2]
    assert len(hello) == SMALL_TALK_COPIES and "standard library" in hello[0][1]["content"]
    assert all(q.follow_up is None for q in questions["test"])


def test_the_offline_set_needs_the_python_documentation():
    with pytest.raises(CourseError, match="LLM_CORPUS=python-docs"):
        world_questions([Document("book.txt#0", "Once upon a time.", "book.txt")], seed=0)


def test_the_files_hold_each_rendered_conversation_with_its_mask(tokenizer, tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/test")
    questions = world_questions(DOCS, seed=0)
    conversations, _ = all_conversations(questions, 0)
    long_one = Conversation([{"role": "user", "content": "word " * 400},
                             {"role": "assistant", "content": "ok"}], "test")
    conversations["val"].append(long_one)
    meta = prepare_sft_data(conversations, questions, tokenizer, artifacts, context_length=256)
    assert read_sft_meta(artifacts) == meta
    tokens, mask, starts = open_sft_split(artifacts, "train", meta)
    end_of_text = tokenizer.special_id("<|endoftext|>")
    for index in (0, 17, len(starts) - 1):
        expected = render_conversation(conversations["train"][index].messages, tokenizer)
        span = slice(int(starts[index]), int(starts[index]) + len(expected.ids))
        assert tokens[span].tolist() == expected.ids and mask[span].tolist() == expected.mask
        assert tokens[span.stop] == end_of_text and mask[span.stop] == 0
    assert meta["splits"]["train"]["sources"] == {PYTHON_DOCS: len(questions["train"]),
                                                  "course": len(COURSE_CONVERSATIONS) * SMALL_TALK_COPIES}
    assert meta["splits"]["val"]["dropped"] == 1
    assert read_questions(artifacts, "test") == questions["test"]
    assert read_questions(artifacts, "train") == questions["train"]   # follow-ups too


def test_an_unknown_hub_source_is_named():
    with pytest.raises(CourseError, match="Unknown SFT source 'wikipedia'"):
        all_conversations(world_questions(DOCS, seed=0), 0, (MixtureSource("wikipedia", 5),))


def test_the_mixture_caps_deduplicates_and_weights_its_sources(tokenizer, tmp_path):
    rows = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(30)]
    rows += [{"instruction": "question 3", "input": "", "output": "ANSWER  3"}]   # near duplicate
    rows += [{"instruction": "Question 4?", "input": "", "output": "Answer 4."}]  # exact duplicate
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text("".join(json.dumps(row) + "\n" for row in rows))
    dolly = tmp_path / "dolly.jsonl"
    dolly.write_text(json.dumps({"instruction": "Question 5?", "context": "", "response": "Answer 5.",
                                 "category": "open_qa"}) + "\n")   # the same as an alpaca row
    questions = world_questions(DOCS, seed=0)
    mixture = (MixtureSource("alpaca", cap=32, weight=1.5), MixtureSource("dolly", cap=10))
    conversations, report = all_conversations(questions, 0, mixture,
                                               data_files={"alpaca": str(alpaca), "dolly": str(dolly)})
    assert report["alpaca"]["read"] == 32 and report["alpaca"]["duplicates"] == 2
    assert report["dolly"] == {"read": 1, "duplicates": 1, "weight": 1.0, "license": "CC BY-SA 3.0"}
    kept = 30
    in_val = [c for c in conversations["val"] if c.source == "alpaca"]
    in_train = [c for c in conversations["train"] if c.source == "alpaca"]
    assert len(in_val) == kept // 20
    assert len(in_train) == round((kept - len(in_val)) * 1.5)   # weight 1.5: half are seen twice
    meta = prepare_sft_data(conversations, questions, tokenizer, Artifacts(tmp_path, "a"), 256, report)
    assert meta["mixture"]["alpaca"]["license"].endswith("(non-commercial)")
    assert sum(row["share"] for row in meta["mixture"].values()) == pytest.approx(1.0)


def test_the_mixture_plan_counts_validation_rows_out_and_weights_in(monkeypatch):
    monkeypatch.setenv("LLM_GATED_SOURCES", "lima")
    plan = mixture_plan((MixtureSource("gsm8k", 1_000), MixtureSource("lima", 1_000, weight=2.0)),
                        own_conversations=1_100)
    assert plan["gsm8k"]["train_conversations"] == 950          # every 20th row validates
    assert plan["lima"]["train_conversations"] == 1_900
    assert plan["lima"]["share"] == pytest.approx(1_900 / (1_100 + 950 + 1_900))
    assert plan["lima"]["license"].endswith("(non-commercial)")


def test_gated_sources_are_left_out_unless_opted_in(monkeypatch, tokenizer):
    mixture = (MixtureSource("gsm8k", 2), MixtureSource("lima", 2))
    files = {name: str(Path(__file__).parent / "fixtures" / "sft" / f"{name}.jsonl") for name in ("gsm8k", "lima")}
    monkeypatch.delenv("LLM_GATED_SOURCES", raising=False)
    assert list(mixture_plan(mixture, own_conversations=10)) == ["gsm8k"]
    assert list(all_conversations(world_questions(DOCS, seed=0), 0, mixture, files)[1]) == ["gsm8k"]
    assert left_out(mixture).endswith("set LLM_GATED_SOURCES=lima): lima")
    monkeypatch.setenv("LLM_GATED_SOURCES", "lima")
    assert list(all_conversations(world_questions(DOCS, seed=0), 0, mixture, files)[1]) == ["gsm8k", "lima"]
    assert left_out(mixture) == ""


def test_conversations_are_shuffled_by_the_seed_so_a_window_does_not_repeat_one_object():
    questions = world_questions(DOCS, seed=0, size=120)
    train = all_conversations(questions, 0)[0]["train"]
    answers = [conversation.messages[-1]["content"] for conversation in train]
    repeated = sum(a == b for a, b in zip(answers, answers[1:]))
    assert repeated < len(answers) / 20, "six phrasings of one object would follow each other"
    assert [c.messages for c in all_conversations(questions, 0)[0]["train"]] == [c.messages for c in train]
    assert [c.messages for c in all_conversations(questions, 1)[0]["train"]] != [c.messages for c in train]
