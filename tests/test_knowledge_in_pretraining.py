"""Stage 02's knowledge augmentation (facts in other forms) and mixed training (fine-tuning
conversations in pretraining): what goes in, what never does, and how meta.json counts it."""

import re
from dataclasses import replace

import pytest

from python_files import pretrain_data
from python_files.artifacts import Artifacts
from python_files.corpus import PYTHON_DOCS
from python_files.document import Document
from python_files.documentation import (FACT_FORMS, FACTS_SOURCE, QUESTION_TEMPLATES, docs_questions, fact_documents,
                                        facts_of, pretraining_conversations)
from python_files.errors import CourseError
from python_files.pretrain_data import QUESTIONS_SOURCE, mixed_conversations, prepare_pretraining_data
from python_files.profiles import PROFILES
from python_files.tokenizer import ASSISTANT, USER
from test_pretrain_data import documents_in
from test_sft_data import DOCS, tokenizer  # noqa: F401 (a fixture)

MODULE = Document("mod0", "Module mod0\n\nTools for tables. They are small.", PYTHON_DOCS)
METHOD = Document("mod0.Table.count", "mod0.Table.count(self, x)\n\nCount rows equal to x. Rows are compared with ==.",
                  PYTHON_DOCS)


def test_facts_name_the_module_the_signature_and_every_sentence():
    facts = facts_of(METHOD, {"mod0"})
    assert (facts.name, facts.module, facts.heading) == ("mod0.Table.count", "mod0", "mod0.Table.count(self, x)")
    assert facts.sentences == ["Count rows equal to x.", "Rows are compared with ==."]
    forms = [form(facts) for form in FACT_FORMS]
    assert all(form and "mod0.Table.count" in form and "Count rows equal to x" in form for form in forms)
    assert len(set(forms)) == len(FACT_FORMS), "each form writes the facts differently"
    assert any("mod0 module" in form for form in forms)
    assert any(form.find("Rows are compared") in range(form.index("Count rows")) for form in forms), "another order"


def test_fact_documents_write_each_object_in_the_forms_asked_never_as_a_question():
    documents = DOCS + [MODULE, METHOD]
    for forms in (1, 3):
        written = fact_documents(documents, forms, 0)
        per_object = {}
        for document in written:
            per_object.setdefault(document.name.split("#")[0], []).append(document.text)
        assert all(1 <= len(texts) <= forms for texts in per_object.values())
        assert len(per_object) == sum(facts_of(d, {"mod0"}) is not None for d in documents)
        assert {document.source for document in written} == {FACTS_SOURCE}
    question_starts = {template.split("{")[0] for template in QUESTION_TEMPLATES}
    assert not any(text.startswith(start) or "?" in text for start in question_starts
                   for text in (d.text for d in written))
    assert "mod0.tiny" not in per_object, "an object without a summary has no facts to write"
    assert fact_documents(documents, 3, 0) == written, "deterministic"
    assert not any(d.name.startswith("mod0.Table.count#") for d in fact_documents(documents, 3, 0, exclude={METHOD.name}))
    with pytest.raises(CourseError, match="fact_forms"):
        fact_documents(documents, len(FACT_FORMS) + 1, 0)


def test_mixed_conversations_ask_only_about_training_objects():
    questions = docs_questions(DOCS, seed=0)
    held_out = {q.name for split in ("val", "test") for q in questions[split]}
    conversations = pretraining_conversations(DOCS, 1.0, 0)
    assert len(conversations) > len([q for q in questions["train"]]) / 2
    text = " ".join(m["content"] for c in conversations for m in c.messages)
    asked = set(re.findall(r"[\w.]+\.[\w]+", text))
    assert not asked & held_out, "no question about a validation or test object, or its made-up name"
    assert len(pretraining_conversations(DOCS, 0.5, 0)) == round(len(conversations) * 0.5)
    with pytest.raises(CourseError, match="share"):
        pretraining_conversations(DOCS, 1.5, 0)


def test_stage_02_writes_facts_and_conversations_to_training_and_counts_them(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain_data, "question_documents", lambda data: DOCS)
    monkeypatch.setattr(pretrain_data, "stream_corpus", lambda *args, **kwargs: iter(DOCS))
    data = replace(PROFILES["ci"].data, fact_forms=2, mixed_questions=0.25)
    artifacts = Artifacts(tmp_path, "a")
    documents, copies = pretrain_data.pretraining_documents(data, artifacts, 0)
    conversations = mixed_conversations(data, 0)
    meta = prepare_pretraining_data(documents, tokenizer, artifacts, "test", tokenizer.vocab_size,
                                    data.val_fraction, workers=1, train_copies=copies,
                                    conversations=conversations, seed=0).meta
    facts = fact_documents(DOCS, 2, 0)
    assert meta["seed"] == 0
    validation = set(documents_in(artifacts, "val", tokenizer))
    assert meta["sources"][QUESTIONS_SOURCE] == len(conversations) == round(0.25 * len(pretraining_conversations(DOCS, 1.0, 0)))
    assert 0 < meta["sources"][FACTS_SOURCE] < len(facts), "objects whose document is in validation have no facts"
    assert set(meta["train_tokens_by_source"]) == {PYTHON_DOCS, FACTS_SOURCE, QUESTIONS_SOURCE}
    assert not any(f.text in validation for f in facts) and not any(USER in t for t in validation)
    training = documents_in(artifacts, "train", tokenizer)
    chats = [text for text in training if USER in text]
    assert len(chats) == len(conversations) and all(text.startswith(USER) and ASSISTANT in text for text in chats), \
        "in the chat format"


def test_the_profiles_count_of_fact_forms_is_the_number_of_forms_written():
    from python_files.profiles import FACT_FORM_COUNT

    assert FACT_FORM_COUNT == len(FACT_FORMS), "data.fact_forms' upper bound follows the forms that exist"


def test_fine_tuning_data_split_by_another_seed_than_the_mixed_questions_is_refused(tokenizer, tmp_path, monkeypatch):
    """Pretraining read training questions of the split seed 0 draws; seed 1 splits the objects
    otherwise, so some of its held-out questions were read: stage 05 refuses it in one sentence."""
    from python_files.sft_data import all_conversations, prepare_sft_data

    monkeypatch.setattr(pretrain_data, "question_documents", lambda data: DOCS)
    data = replace(PROFILES["ci"].data, mixed_questions=0.5)
    artifacts = Artifacts(tmp_path, "a")
    prepare_pretraining_data(iter(DOCS), tokenizer, artifacts, "test", tokenizer.vocab_size, data.val_fraction,
                             workers=1, conversations=mixed_conversations(data, 0), seed=0)
    assert {q.name for q in docs_questions(DOCS, seed=1)["test"]} != {q.name for q in docs_questions(DOCS, seed=0)["test"]}
    questions = docs_questions(DOCS, seed=1)
    with pytest.raises(CourseError, match="hold fine-tuning questions, were made with seed=0, and this run's seed is 1: "
                                          "set seed=0"):
        prepare_sft_data(all_conversations(questions, 1)[0], questions, tokenizer, artifacts, 64, seed=1)
    questions = docs_questions(DOCS, seed=0)
    assert prepare_sft_data(all_conversations(questions, 0)[0], questions, tokenizer, artifacts, 64, seed=0)
