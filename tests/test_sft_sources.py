"""Each hub instruction set's adapter, on fixture rows of its real schema."""

from pathlib import Path

import pytest

from python_files.errors import CourseError
from python_files.sft_sources import HUB_SOURCES, hub_conversations

FIXTURES = Path(__file__).parent / "fixtures"


def conversations(name, fixture, limit=10):
    return list(hub_conversations(HUB_SOURCES[name], limit, data_files=str(FIXTURES / fixture)))


def test_alpaca_appends_the_input_and_skips_empty_outputs():
    rows = conversations("alpaca", "alpaca_cleaned.jsonl")
    assert len(rows) == 2
    assert rows[1] == [{"role": "user", "content": "Translate the sentence into French.\n\nThe cat sleeps."},
                       {"role": "assistant", "content": "Le chat dort."}]


def test_dolly_appends_the_context_passage():
    rows = conversations("dolly", "dolly_15k.jsonl")
    assert rows[0][0]["content"].endswith("built for the 1889 World's Fair in Paris.")
    assert rows[1] == [{"role": "user", "content": "Name a primary color."},
                       {"role": "assistant", "content": "Red."}]


def test_no_robots_keeps_its_system_turn():
    rows = conversations("no_robots", "no_robots.jsonl")
    assert [m["role"] for m in rows[0]] == ["system", "user", "assistant"]


def test_smoltalk_keeps_every_turn():
    rows = conversations("smoltalk", "smoltalk_everyday.jsonl")
    assert [m["role"] for m in rows[0]] == ["user", "assistant", "user", "assistant"]


def test_ultrachat_drops_conversations_without_an_answer():
    rows = conversations("ultrachat", "ultrachat_200k.jsonl")
    assert len(rows) == 1 and rows[0][1]["content"].startswith("Bees collect nectar")


def test_the_limit_counts_usable_conversations():
    assert len(conversations("alpaca", "alpaca_cleaned.jsonl", limit=1)) == 1


def test_an_unreachable_source_names_itself_and_how_to_drop_it():
    # conftest sets HF_HUB_OFFLINE=1, as on a machine without network
    with pytest.raises(CourseError, match="'dolly' could not be read .* Remove it from sft_sources"):
        list(hub_conversations(HUB_SOURCES["dolly"], 5))
