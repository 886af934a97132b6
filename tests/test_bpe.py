"""The from-scratch BPE: the fast trainer against the reference, special tokens, save/load,
and exact agreement with the `tokenizers` library given its merges."""

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from python_files.bpe import (GPT2_SPLIT_PATTERN, BPETokenizer, train_bpe,
                              train_bpe_reference)
from python_files.errors import CourseError
from python_files.tokenizer import SPECIAL_TOKENS, save_tokenizer, train_tokenizer

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n",
    "In 1999 there were 365 days; in 2000 there were 366. Numbers: 3.14159, 2.71828, 1,000,000.",
    "Grüße aus Köln! Ça va? naïve café — 日本語のテキスト 😀🎉",
    "json.dumps serializes obj to a JSON formatted str; json.loads does the reverse.",
] * 4

HELD_OUT = {
    "prose": "Brown foxes rarely jump over dogs that are lazy, said the quick narrator.",
    "code": "class Stack:\n    def push(self, item):\n        self.items.append(item)\n",
    "numbers": "Call 555-0199 before 12:30; pay 1234567.89 or 42,000 in 2025.",
    "whitespace runs": "a  b   c\t\td\n\n\n\ne    \n   f",
    "non-ascii": "Straße, façade, Ελληνικά, русский текст, 中文字符",
    "emoji": "ok 👍🏽 family 👨‍👩‍👧 flag 🇫🇷 done",
}


def test_the_first_merge_of_the_classic_example_is_aa():
    # aaabdaaabac: "aa" occurs four times, more than any other pair
    tokenizer = train_bpe(["aaabdaaabac"], vocab_size=257)
    assert tokenizer.merges == [(ord("a"), ord("a"), 256)]
    assert tokenizer.encode("aaab") == [256, ord("a"), ord("b")]


def test_fast_trainer_learns_exactly_the_reference_merges():
    fast = train_bpe(TRAINING_TEXT, vocab_size=256 + 120)
    reference = train_bpe_reference(TRAINING_TEXT, vocab_size=256 + 120)
    assert len(reference.merges) == 120
    assert fast.merges == reference.merges


def test_a_prefix_of_the_merges_is_a_shorter_training_run():
    long_run = train_bpe(TRAINING_TEXT, vocab_size=256 + 100)
    short_run = train_bpe(TRAINING_TEXT, vocab_size=256 + 40)
    assert long_run.with_merges(40).merges == short_run.merges


@pytest.mark.parametrize("kind", HELD_OUT)
def test_decode_inverts_encode(kind):
    tokenizer = train_bpe(TRAINING_TEXT, vocab_size=256 + 80)
    assert tokenizer.decode(tokenizer.encode(HELD_OUT[kind])) == HELD_OUT[kind]


def test_special_tokens_are_plain_text_unless_allowed():
    tokenizer = train_bpe(TRAINING_TEXT, vocab_size=300, special_tokens=SPECIAL_TOKENS)
    end = tokenizer.special_tokens["<|endoftext|>"]
    text = "story<|endoftext|>"
    assert end not in tokenizer.encode(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.encode(text, allowed_special={"<|endoftext|>"})[-1] == end
    assert tokenizer.encode(text, allowed_special="all")[-1] == end
    with pytest.raises(CourseError, match="not a special token"):
        tokenizer.encode(text, allowed_special={"<|nope|>"})


@pytest.mark.parametrize("registered", [["<|end|>", "<|end|>!"], ["<|end|>!", "<|end|>"]])
def test_overlapping_special_tokens_match_the_longest_whatever_the_order(registered):
    tokenizer = train_bpe(TRAINING_TEXT, vocab_size=300, special_tokens=registered)
    short, long = tokenizer.special_tokens["<|end|>"], tokenizer.special_tokens["<|end|>!"]
    assert tokenizer.encode("a<|end|>!b", allowed_special="all")[1:-1] == [long]
    assert tokenizer.encode("a<|end|>b", allowed_special="all")[1:-1] == [short]


def test_save_and_load_give_the_same_tokenizer(tmp_path):
    tokenizer = train_bpe(TRAINING_TEXT, vocab_size=300, special_tokens=["<|endoftext|>"])
    tokenizer.save(tmp_path / "bpe.json")
    loaded = BPETokenizer.load(tmp_path / "bpe.json")
    assert loaded.merges == tokenizer.merges
    assert loaded.special_tokens == tokenizer.special_tokens
    text = " ".join(HELD_OUT.values())
    assert loaded.encode(text) == tokenizer.encode(text)


@pytest.fixture(scope="module")
def production_tokenizer_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    save_tokenizer(train_tokenizer(TRAINING_TEXT, vocab_size=400), path)
    return path


@pytest.mark.parametrize("kind", HELD_OUT)
def test_our_encoder_reproduces_the_ids_of_tokenizers(production_tokenizer_file, kind):
    ours = BPETokenizer.from_tokenizers_json(production_tokenizer_file)
    theirs = Tokenizer.from_file(str(production_tokenizer_file))
    assert len(ours.merges) > 100   # the parity must be about merges, not just bytes
    assert ours.encode(HELD_OUT[kind]) == theirs.encode(HELD_OUT[kind]).ids


def test_the_gpt2_byte_level_pre_tokenizer_is_read_too(tmp_path):
    # a tokenizer.json whose split regex is ByteLevel's built-in GPT-2 pattern
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(TRAINING_TEXT, trainers.BpeTrainer(
        vocab_size=350, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer.save(str(tmp_path / "gpt2_style.json"))
    ours = BPETokenizer.from_tokenizers_json(tmp_path / "gpt2_style.json")
    assert ours.pattern == GPT2_SPLIT_PATTERN
    for text in HELD_OUT.values():
        assert ours.encode(text) == tokenizer.encode(text).ids
