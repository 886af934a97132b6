"""The world the model is asked about: chosen by its written rule, its facts written name first."""

import pytest

from python_files.document import Document
from python_files.documentation import facts_of
from python_files.errors import CourseError
from python_files.world import (FORM_OPENINGS, RUNNING_EXAMPLES, WORLD_MODULES, WORLD_SOURCE, name_first_forms,
                                readings, world_documents, world_facts, world_halves, world_in)


def doc(name: str, text: str) -> Document:
    return Document(name, text, "python-docs")


DOCS = [doc("zipfile.ZipFile", "class zipfile.ZipFile\n\nA ZIP archive. It reads and writes."),
        doc("json", "Module json\n\nJSON encoding and decoding."),
        doc("json.dumps", "json.dumps(obj)\n\nSerialize obj to a JSON formatted string. Keys are sorted when asked."),
        doc("tokenize.untokenize", "tokenize.untokenize(tokens)\n\nTransform tokens back into source."),
        doc("collections.Counter", "class collections.Counter\n\nDict subclass for counting hashable items."),
        doc("json.loads", "json.loads(s)\n\nDeserialize s to a Python object.")]


def test_the_world_takes_the_modules_in_the_rules_order_then_the_rest_of_the_documentation():
    names = [facts.name for facts in world_facts(DOCS, 6)]
    assert names == ["json", "json.dumps", "json.loads", "collections.Counter", "zipfile.ZipFile",
                     "tokenize.untokenize"], "json, then collections, then zipfile (later in the rule), then the rest"
    assert [facts.name for facts in world_facts(DOCS, 3)] == names[:3]
    reordered = [facts.name.split(".")[0] for facts in world_facts(list(reversed(DOCS)), 6)]
    assert reordered == ["json"] * 3 + ["collections", "zipfile", "tokenize"], "the rule orders the modules"
    assert WORLD_MODULES[:3] == ("json", "os.path", "collections"), "the running examples come first"
    for size in (1, 7):
        with pytest.raises(CourseError, match=f"data.world={size}: .* documents 6 objects.* choose a world from 2 to 6"):
            world_facts(DOCS, size)
    assert len(world_facts(DOCS, None)) == 6, "None: every documented object"


def test_every_form_names_the_object_before_what_it_does_and_the_forms_differ():
    facts = facts_of(DOCS[2], {"json"})
    forms = name_first_forms(facts)
    assert len(forms) == len(FORM_OPENINGS) >= 6 and len(set(forms)) == len(forms)
    for form in forms:
        assert form.index("json.dumps") < form.index("Serialize obj to a JSON formatted string."), form
        assert "Keys are sorted" not in form, "the summary alone: the question asks for it"


def test_world_documents_are_every_form_of_every_object_shuffled_by_the_seed():
    world = world_facts(DOCS, 4)
    written = world_documents(world, seed=0)
    assert len(written) == 4 * len(FORM_OPENINGS) and {d.source for d in written} == {WORLD_SOURCE}
    assert written == world_documents(world, seed=0)
    assert [d.name for d in written] != [d.name for d in world_documents(world, seed=1)]


def test_readings_count_each_form_each_copy_and_each_pass():
    # 6 forms written 5 times; 800 steps of 4,096 tokens over 1,000,000 training tokens: 3.28 passes
    assert readings(copies=5, steps=800, tokens_per_step=4096, train_tokens=1_000_000) == \
        pytest.approx(6 * 5 * 3.2768)


def test_recall_asks_the_base_model_for_the_fact_from_the_objects_name(monkeypatch):
    from python_files import qa_eval
    from python_files.documentation import Question
    from python_files.tokenizer import END_OF_TEXT, TextTokenizer, train_tokenizer

    tokenizer = TextTokenizer.from_json(train_tokenizer([d.text for d in DOCS] * 20, 300).to_str())
    asked = []

    def continuations(model, prompts, max_new_tokens, stop_ids, batch_size):
        asked.extend(prompts)
        return [tokenizer.encode(" Serialize obj to a JSON formatted string. More."), tokenizer.encode(" No idea.")]

    monkeypatch.setattr(qa_eval, "greedy_continuations", continuations)
    questions = [Question("json.dumps", "What does json.dumps do?", "Serialize obj to a JSON formatted string.", True),
                 Question("json.loads", "What does json.loads do?", "Deserialize s to a Python object.", True)]
    scored = qa_eval.recalled(None, tokenizer, questions)
    assert asked[0] == [tokenizer.special_id(END_OF_TEXT)] + tokenizer.encode("json.dumps:")
    assert [s.correct for s in scored] == [True, False]


def test_the_halves_split_the_world_by_the_seed_and_fine_tuning_asks_about_the_running_examples():
    documents = DOCS + [doc(f"os.path.f{i}", f"os.path.f{i}(p)\n\nReturn the path number {i}.") for i in range(40)] + \
        [doc("os.path.join", "os.path.join(a, *p)\n\nJoin two or more pathname components.")]
    world = world_facts(documents, 46)   # json, os.path and collections: 45 objects; and zipfile
    for seed in range(5):
        fine_tuning, held_out = world_halves(world, seed)
        assert len(held_out) == 23 and len(fine_tuning) == 23
        assert {f.name for f in fine_tuning} | {f.name for f in held_out} == {f.name for f in world}
        assert {"json.dumps", "os.path.join", "collections.Counter"} <= {f.name for f in fine_tuning}
        assert {f.name for f in fine_tuning[-3:]} == set(RUNNING_EXAMPLES), "last: validation takes the first ones"
        assert world_halves(world, seed) == (fine_tuning, held_out), "deterministic"
    assert world_halves(world, 0)[1] != world_halves(world, 1)[1], "another seed, another half"
    assert set(RUNNING_EXAMPLES) == {"json.dumps", "os.path.join", "collections.Counter"}


def test_the_world_leaves_out_the_objects_whose_documents_validation_holds():
    from python_files.document import goes_to_validation
    documents = [doc(f"json.f{i}", f"json.f{i}(x)\n\nReturn the value number {i}.") for i in range(200)]
    validated = {d.name for d in documents if goes_to_validation(d, 0.1)}
    world = world_in(documents, 50, seed=0, val_fraction=0.1)
    assert validated and not validated & {f.name for f in world.objects}
    assert len(world.objects) == 50 and not validated & {f.name for f in world.outside}
    assert [f.name for f in world.objects] == [d.name for d in documents if d.name not in validated][:50]


KIND_DOCS = DOCS + [doc("json.JSONDecoder.decode", "json.JSONDecoder.decode(s)\n\nReturn the Python object of s."),
                    doc("json.JSONDecoder", "class json.JSONDecoder\n\nSimple JSON decoder."),
                    doc("json.decoder.scanstring", "json.decoder.scanstring(s)\n\nScan the string s.")]


def test_an_objects_kind_and_module_come_from_its_heading_and_its_parent():
    kinds = {facts.name: (facts.kind, facts.defined_in) for facts in world_facts(KIND_DOCS, None)}
    assert kinds["json"][0] == "module" and kinds["json.dumps"] == ("function", "json")
    assert kinds["json.JSONDecoder"] == ("class", "json") and kinds["zipfile.ZipFile"] == ("class", "zipfile")
    assert kinds["json.JSONDecoder.decode"] == ("method", "json"), "a call whose parent is a class, in the class's module"
    assert kinds["json.decoder.scanstring"] == ("function", "json.decoder"), "json.decoder is no class"


def test_kind_questions_ask_every_object_but_a_module_once_and_count_for_the_made_up_share():
    from python_files.documentation import KIND_ANSWER
    from python_files.qa_eval import question_kind, score
    from python_files.world import world_questions

    plain = world_questions(KIND_DOCS, seed=0, size=9)
    asked = world_questions(KIND_DOCS, seed=0, size=9, kind_questions=True)
    world = world_in(KIND_DOCS, 9, seed=0)
    for split, group, objects in (("train", "fine-tuning", world.fine_tuning[1:]), ("val", "fine-tuning", world.fine_tuning[:1]),
                                  ("test", "held-out", world.held_out)):
        kind = [q for q in asked[split] if q.aspect == "kind"]
        def what_it_does(questions):   # (the test draws its phrasings after the made-up names, now more)
            return sorted((q.name, q.answer, q.taught) for q in questions if q.aspect == "summary" and q.known)
        assert what_it_does(asked[split]) == what_it_does(plain[split]), "the same questions about what each object does"
        assert sorted(q.name for q in kind) == sorted(f.name for f in objects if f.kind != "module")
        assert {q.group for q in kind} <= {group}
        assert all(q.answer == KIND_ANSWER.format(kind=f.kind, module=f.defined_in) for q in kind
                   for f in objects if f.name == q.name)
        if split != "test":   # a made-up name per four questions about real objects, these included
            assert sum(not q.known for q in asked[split]) == round(sum(q.known for q in asked[split]) / 4)
    question = next(q for q in asked["test"] if q.aspect == "kind")
    assert question_kind(question) == "held-out, kind and module"
    assert score(question, " " + question.answer.upper()).correct, "case and spacing aside, word for word"
    wrong_kind = question.answer.replace("function", "klass").replace("method", "klass").replace("class", "function")
    assert not score(question, wrong_kind).correct and not score(question, question.answer[:-1] + " too.").correct
