"""Sampling (temperature, top-k, top-p, the KV cache) and the answer scoring of stage 07."""

import pytest
import torch

from python_files.model import GPT, GPTConfig
from python_files.documentation import UNKNOWN_ANSWER, Question
from python_files.qa_eval import (content_f1, content_words, format_columns, format_table, names_and_numbers, outside_rates, says_it_does_not_know,
                                  score, summary_table, token_f1, wilson_interval)
from python_files.sampling import generate, generate_groups, next_token_distribution, sample_tokens


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, context_length=64, n_layer=2, n_head=2, n_embd=32))


def test_the_kv_cache_does_not_change_greedy_generation(model):
    prompt = [3, 1, 4, 1, 5, 9, 2, 6]
    cached = generate(model, prompt, 50, temperature=0.0, use_cache=True)
    uncached = generate(model, prompt, 50, temperature=0.0, use_cache=False)
    assert cached == uncached and len(cached) == 50


def test_sampling_with_a_seed_is_reproducible_with_or_without_the_cache(model):
    runs = [generate(model, [1, 2], 30, temperature=1.0, top_k=10, seed=7, use_cache=c) for c in (True, False)]
    assert runs[0] == runs[1]
    assert generate(model, [1, 2], 30, temperature=1.0, seed=8) != runs[0]


def test_generation_stops_at_a_stop_token_and_at_the_end_of_the_context(model):
    free = generate(model, [1, 2, 3], 20, temperature=0.0)
    stopped = generate(model, [1, 2, 3], 20, temperature=0.0, stop_ids={free[4]})
    assert stopped == free[:free.index(free[4]) + 1]
    assert len(generate(model, [i % 50 for i in range(60)], 100, temperature=0.0)) == 4   # 64 - 60


def test_top_k_and_top_p_keep_the_likeliest_tokens():
    logits = torch.log(torch.tensor([0.05, 0.5, 0.15, 0.3]))
    top_k = next_token_distribution(logits, 1.0, 2, None)
    assert torch.allclose(top_k, torch.tensor([0, 0.5 / 0.8, 0, 0.3 / 0.8]))
    # 0.5 + 0.3 reach p = 0.7: the two likeliest tokens are kept
    top_p = next_token_distribution(logits, 1.0, None, 0.7)
    assert torch.allclose(top_p, torch.tensor([0, 0.5 / 0.8, 0, 0.3 / 0.8]))
    assert (next_token_distribution(logits, 1.0, None, 0.4) > 0).sum() == 1


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    cold, hot = next_token_distribution(logits, 0.5, None, None), next_token_distribution(logits, 2.0, None, None)
    assert cold[0] > next_token_distribution(logits, 1.0, None, None)[0] > hot[0]


def test_token_f1_is_the_harmonic_mean_of_word_precision_and_recall():
    assert token_f1("Return the sum", "Return the sum") == 1.0
    assert token_f1("a b c", "a b d") == pytest.approx(2 / 3)     # precision 2/3, recall 2/3
    assert token_f1("a", "a b c d") == pytest.approx(0.4)         # precision 1, recall 1/4
    assert token_f1("", "a") == 0.0


def test_token_f1_counts_operators_and_symbols():
    assert token_f1("Same as a + b.", "Same as a ^= b.") < 1.0
    assert token_f1("Same as a + b.", "same as a + b.") == 1.0
    assert token_f1("Return x // y", "Return x / y") == 0.75   # 3 of 4 tokens shared: // is one token


def test_content_words_drop_stop_words_and_punctuation_and_read_one_meaning_as_one():
    assert content_words("Return the sum of a and b.") == ["return", "sum", "b"]
    assert content_words("Returns true if the path is a file.") == content_words("Test whether a path is a file")
    assert content_words("Same as a ^= b.") == ["same", "^=", "b"]     # symbols are kept


def test_content_f1_needs_names_and_numbers_to_match():
    assert names_and_numbers("Python 'utf-16-le' Codec") == {"16", "utf-16-le"}
    assert names_and_numbers("Return the file's size and the file's name.") == set(), "apostrophes are no quotes"
    assert content_f1("Encode string according to RFC 2231.", "Encode a string according to RFC 2231") == 1.0
    assert content_f1("Encode string according to RFC 2555.", "Encode a string according to RFC 2231") == 0.0
    assert content_f1("Log a message with severity 'ERROR'.", "Log a message with severity 'CRITICAL'.") == 0.0
    assert 0.0 < content_f1("Return the loader for the module.", "Return the spec for the module.") < 1.0


def test_scoring_known_and_made_up_objects():
    known = Question("json.dumps", "What does json.dumps do?", "Serialize obj to a JSON formatted str.", True)
    made_up = Question("json.fly", "What does json.fly do?", UNKNOWN_ANSWER.format(name="json.fly"), False)
    assert score(known, "Serialize obj to a JSON formatted string.").correct
    assert not score(known, "It flies.").correct
    assert not score(known, "I don't know json.dumps: serialize obj to a JSON formatted str.").correct
    assert score(made_up, "I don't know json.fly: it is not in the Python documentation I learned from.").correct
    assert says_it_does_not_know("I do not know json.fly.", "json.fly")
    assert not score(made_up, "I don't know json.fly: it is not in the Python documentation I learn from.").correct
    assert not score(made_up, "I don't know json.fly: it is not in the Python").correct   # cut off
    assert not score(made_up, "I don't know json.flying: it is not in the Python documentation I learned from.").correct
    assert not score(made_up, "json.fly serializes objects.").correct
    table = summary_table([score(known, "Serialize obj to a JSON formatted str."), score(made_up, "It flies.")])
    assert table["fine-tuning objects"]["correct"] == 1.0 and table["made-up names"]["correct"] == 0.0


def test_the_table_has_a_row_per_group_and_phrasing_and_outside_the_world_three_rates():
    from dataclasses import replace
    known = Question("json.dumps", "What does json.dumps do?", "Serialize obj to a JSON formatted string.", True)
    scored = [score(replace(known, group="held-out"), "Serialize obj to a JSON formatted string."),
              score(replace(known, group="held-out", taught=False), "No."),
              score(replace(known, group="outside"), "Serialize obj to a JSON formatted string."),
              score(replace(known, group="outside"), "I don't know json.dumps."),
              score(replace(known, group="outside"), "Return a list of lines."),
              score(replace(known, group="outside"), "Sort a list in place.")]
    table = summary_table(scored)
    assert list(table) == ["held-out objects", "held-out, untaught phrasing", "outside the world"]
    assert table["held-out objects"]["correct"] == 1.0 and table["held-out, untaught phrasing"]["correct"] == 0.0
    assert outside_rates(table) == ('outside the world (4 real objects): 25% right, 25% "I don\'t know", '
                                    '50% a description of its own')


def test_small_talk_asks_every_phrasing_fine_tuning_holds(monkeypatch):
    from python_files import qa_eval
    from python_files.documentation import COURSE_CONVERSATIONS, SMALL_TALK
    from python_files.tokenizer import TextTokenizer, train_tokenizer

    tokenizer = TextTokenizer.from_json(train_tokenizer([a for _, a in SMALL_TALK] * 20, 400).to_str())
    asked = []

    def continuations(model, prompts, max_new_tokens, stop_ids, batch_size):
        asked.extend(prompts)   # the first is answered in form, the others not
        return [tokenizer.encode(SMALL_TALK[0][1])] + [tokenizer.encode("Return a list.")] * (len(prompts) - 1)

    monkeypatch.setattr(qa_eval, "greedy_continuations", continuations)
    answers = qa_eval.small_talk(None, tokenizer)
    assert [phrasing for phrasing, _, _ in answers] == [c[0]["content"] for c in COURSE_CONVERSATIONS]
    assert len(asked) == len(COURSE_CONVERSATIONS) and [in_form for _, _, in_form in answers].count(True) == 1


def test_wilson_interval_holds_the_rate_exactly_even_at_0_and_100_percent():
    for trials in range(1, 60):
        for successes in range(trials + 1):
            low, high = wilson_interval(successes, trials)
            assert 0.0 <= low <= successes / trials <= high <= 1.0, (successes, trials)
    assert wilson_interval(6, 6)[1] == 1.0 and wilson_interval(0, 11)[0] == 0.0


def test_wilson_interval_contains_the_rate_and_narrows_with_more_questions():
    low, high = wilson_interval(25, 100)
    assert low < 0.25 < high and 0.0 <= low and high <= 1.0
    wide, narrow = wilson_interval(5, 20), wilson_interval(250, 1000)
    assert narrow[1] - narrow[0] < (high - low) < wide[1] - wide[0]
    assert wilson_interval(0, 30)[0] == 0.0 and 0.0 < wilson_interval(0, 30)[1] < 0.15
    assert wilson_interval(30, 30)[1] == 1.0
    # the textbook value for 50 of 100: 0.50 +- about 0.097
    assert wilson_interval(50, 100) == pytest.approx((0.404, 0.596), abs=0.002)


def test_table_prints_each_rate_with_its_interval():
    known = Question("json.dumps", "What does json.dumps do?", "Serialize obj to a JSON formatted str.", True)
    table = summary_table([score(known, "Serialize obj to a JSON formatted str."), score(known, "No.")])
    assert table["fine-tuning objects"]["correct"] == 0.5
    assert "50% (9-91%)" in format_table(table)
    better = summary_table([score(known, "Serialize obj to a JSON formatted str.")] * 2)
    row = next(line for line in format_columns({"before": table, "after": better}).splitlines()
               if line.startswith("fine-tuning objects"))
    assert row.index("50% (9-91%)") < row.index("100% (34-100%)"), "one column per model, in order"


def test_a_group_is_sampled_as_one_batch_from_a_prompt_prefilled_once(model):
    greedy = generate(model, [1, 2, 3], 12, temperature=0.0)
    stop = greedy[5]
    [group] = generate_groups(model, [[1, 2, 3]], 4, 12, 0.0, {stop}, torch.Generator().manual_seed(0))
    assert group == [greedy[:greedy.index(stop) + 1]] * 4, "greedy rows are the single greedy answer"
    sampled = [generate_groups(model, [[1, 2, 3]], 6, 12, 1.0, {stop}, torch.Generator().manual_seed(5))[0]
               for _ in range(2)]
    assert sampled[0] == sampled[1], "the same generator seed, the same answers"
    assert len({tuple(answer) for answer in sampled[0]}) > 1, "the rows are sampled apart"
    assert all(stop not in answer[:-1] for answer in sampled[0]), "each row ends at its first stop"


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_prompts_of_different_lengths_batched_with_padding_answer_as_each_alone(positions):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=64, n_layer=2, n_head=2, n_embd=32, positions=positions))
    prompts = [[7, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9], [4, 4, 8, 1, 30]]
    groups = generate_groups(model, prompts, 2, 20, 0.0, (), torch.Generator().manual_seed(0))
    alone = [generate(model, prompt, 20, temperature=0.0) for prompt in prompts]
    assert groups == [[answer, answer] for answer in alone]
    assert len({tuple(answer) for answer in alone}) == 3, "three different answers, in the prompts' order"
    with pytest.raises(ValueError, match="needs the cache"):
        next(sample_tokens(model, prompts, 1, 5, use_cache=False))


def test_sampling_never_reseeds_the_process(model):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    generate(model, [1, 2], 10, temperature=1.0)          # no seed: a generator of its own
    generate(model, [1, 2], 10, temperature=1.0, seed=3)
    assert torch.equal(torch.rand(3), expected)
