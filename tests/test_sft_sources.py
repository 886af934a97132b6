"""Each hub instruction set's adapter, on fixture rows of its real schema."""

from pathlib import Path

import re

import pytest

from python_files.errors import CourseError
from python_files.profiles import setting_types
from python_files.sft_sources import HUB_SOURCES, hub_conversations

FIXTURES = Path(__file__).parent / "fixtures" / "sft"


def conversations(name, limit=10):
    """The conversations of the fixture file of source `name` (rows of its real schema)."""
    return list(hub_conversations(HUB_SOURCES[name], limit, data_files=str(FIXTURES / f"{name}.jsonl")))


def test_alpaca_appends_the_input_and_skips_empty_outputs():
    rows = conversations("alpaca")
    assert len(rows) == 2
    assert rows[1] == [{"role": "user", "content": "Translate the sentence into French.\n\nThe cat sleeps."},
                       {"role": "assistant", "content": "Le chat dort."}]


def test_dolly_appends_the_context_passage():
    rows = conversations("dolly")
    assert rows[0][0]["content"].endswith("built for the 1889 World's Fair in Paris.")
    assert rows[1] == [{"role": "user", "content": "Name a primary color."},
                       {"role": "assistant", "content": "Red."}]


def test_no_robots_keeps_its_system_turn():
    rows = conversations("no_robots")
    assert [m["role"] for m in rows[0]] == ["system", "user", "assistant"]


def test_smoltalk_keeps_every_turn():
    rows = conversations("smoltalk")
    assert [m["role"] for m in rows[0]] == ["user", "assistant", "user", "assistant"]


def test_ultrachat_drops_conversations_without_an_answer():
    rows = conversations("ultrachat")
    assert len(rows) == 1 and rows[0][1]["content"].startswith("Bees collect nectar")


def test_the_limit_counts_usable_conversations():
    assert len(conversations("alpaca", limit=1)) == 1


def test_an_unreachable_source_names_itself_and_how_to_drop_it():
    # conftest sets HF_HUB_OFFLINE=1, as on a machine without network
    with pytest.raises(CourseError, match=r"'dolly' could not be read .* Remove it from ([\w.]+) in the profile") as error:
        list(hub_conversations(HUB_SOURCES["dolly"], 5))
    named_setting = re.search(r"Remove it from ([\w.]+)", str(error.value)).group(1)
    assert named_setting in setting_types(), "the message names a real setting"


def test_oasst_follows_the_best_ranked_replies_and_skips_deleted_and_other_languages():
    rows = conversations("oasst")
    # tree a1: rank 0 answer (a3), then the follow-up (a4), whose best reply a5 is deleted -> a6;
    # tree b1 is Spanish; tree c1 has no answer
    assert rows == [[
        {"role": "user", "content": "What is a list comprehension?"},
        {"role": "assistant", "content": "It builds a list from an expression and a loop, in one line."},
        {"role": "user", "content": "Can it filter too?"},
        {"role": "assistant", "content": "Yes: [x for x in items if x > 0]."}]]


def test_gsm8k_drops_calculator_annotations_and_states_the_result():
    answer = conversations("gsm8k")[0][1]["content"]
    assert "<<" not in answer and "6 * 8 = 48 rolls" in answer
    assert answer.endswith("The answer is 43.")


def test_lima_alternates_user_and_assistant():
    rows = conversations("lima")
    assert [m["role"] for m in rows[1]] == ["user", "assistant", "user", "assistant"]


def test_smol_smoltalk_is_in_the_messages_format():
    assert conversations("smol_smoltalk")[0][1]["role"] == "assistant"


def test_slimorca_maps_sharegpt_roles_and_drops_unanswered_rows():
    rows = conversations("slimorca")
    assert len(rows) == 1 and [m["role"] for m in rows[0]] == ["system", "user", "assistant"]


def test_a_gated_source_says_how_to_get_access():
    with pytest.raises(CourseError, match="lima is gated: accept its terms"):
        list(hub_conversations(HUB_SOURCES["lima"], 5))


def test_every_source_names_its_license():
    assert len(HUB_SOURCES) >= 10 and all(source.license for source in HUB_SOURCES.values())
    non_commercial = {name for name, source in HUB_SOURCES.items() if "non-commercial" in source.license}
    assert {"alpaca", "no_robots", "lima"} <= non_commercial
