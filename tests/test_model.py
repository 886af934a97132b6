"""The GPT model: shapes, causality, the parameter-count formula, the masked loss."""

import math

import pytest
import torch

from python_files.errors import CourseError
from python_files.model import (GPT, GPTConfig, KVCache, flops_per_token, masked_cross_entropy, parameter_count,
                                rotary_angles, rotate)

SMALL = GPTConfig(vocab_size=97, context_length=16, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(SMALL).eval()


def test_logits_have_one_score_per_vocabulary_entry(model):
    idx = torch.randint(0, SMALL.vocab_size, (3, 10))
    logits, loss = model(idx)
    assert logits.shape == (3, 10, SMALL.vocab_size) and loss is None


def test_changing_a_future_token_never_changes_earlier_logits(model):
    idx = torch.randint(0, SMALL.vocab_size, (1, SMALL.context_length))
    with torch.no_grad():
        reference, _ = model(idx)
        for position in range(SMALL.context_length):
            changed = idx.clone()
            changed[0, position] = (changed[0, position] + 1) % SMALL.vocab_size
            logits, _ = model(changed)
            assert torch.allclose(logits[0, :position], reference[0, :position], atol=1e-6)
            assert not torch.allclose(logits[0, position], reference[0, position])


@pytest.mark.parametrize("config", [SMALL, GPTConfig(50304, 1024, 12, 12, 768)])
def test_parameter_count_matches_the_formula(config):
    assert GPT(config).num_parameters() == parameter_count(config)


def test_gpt2_small_has_124_million_parameters():
    # GPT-2 small (vocab 50257, context 1024, 12 x 768) is known as the 124M model
    assert round(parameter_count(GPTConfig(50257, 1024, 12, 12, 768)) / 1e6) == 124


def test_flops_per_token_counts_six_per_matmul_weight_plus_attention():
    config = SMALL
    weights = parameter_count(config) - config.context_length * config.n_embd
    attention = 12 * config.n_layer * config.n_embd * config.context_length
    assert flops_per_token(config) == 6 * weights + attention


def test_the_loss_at_initialization_is_close_to_uniform(model):
    # targets independent of the inputs: with tied weights, the input token itself scores higher
    idx, targets = torch.randint(0, SMALL.vocab_size, (2, 8, 16))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(SMALL.vocab_size)) < 0.2


def test_the_loss_mask_selects_the_positions_that_count():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 0], [1, 0, 0, 0, 0]])
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1),
                                                  reduction="none").reshape(2, 5)
    expected = (per_token[0, 2] + per_token[0, 3] + per_token[1, 0]) / 3
    assert torch.allclose(masked_cross_entropy(logits, targets, mask), expected)


def test_a_padded_vocabulary_never_predicts_its_padding_ids():
    config = GPTConfig(vocab_size=97, context_length=16, n_layer=1, n_head=2, n_embd=32, vocab_multiple=64)
    model = GPT(config)
    assert model.wte.weight.shape[0] == 128 == config.padded_vocab_size
    assert model.num_parameters() == parameter_count(config)
    logits, _ = model(torch.zeros(1, 4, dtype=torch.long))
    assert logits.shape[-1] == 97


def test_textbook_attention_computes_what_the_fused_kernel_computes(model):
    torch.manual_seed(1)
    textbook = GPT(GPTConfig(**{**SMALL.__dict__, "fused_attention": False})).eval()
    textbook.load_state_dict(model.state_dict())
    idx = torch.randint(0, SMALL.vocab_size, (2, SMALL.context_length))
    with torch.no_grad():
        assert torch.allclose(textbook(idx)[0], model(idx)[0], atol=1e-5)


def test_weights_are_tied_and_sequences_longer_than_the_context_are_refused(model):
    assert model.lm_head.weight is model.wte.weight
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, SMALL.context_length + 1, dtype=torch.long))


MODERN_CHOICES = [{"positions": "rope"}, {"norm": "rmsnorm"}, {"mlp": "relu2"}, {"qk_norm": True},
                  {"tied_head": False}, {"zero_init": True}, {"logit_softcap": 5.0},
                  {"positions": "rope", "norm": "rmsnorm", "mlp": "relu2", "qk_norm": True,
                   "tied_head": False, "zero_init": True, "logit_softcap": 5.0}]


def modern(**choices) -> GPTConfig:
    return GPTConfig(**{**SMALL.__dict__, **choices})


@pytest.mark.parametrize("choices", MODERN_CHOICES)
def test_each_modern_choice_counts_its_parameters_stays_causal_and_caches(choices):
    torch.manual_seed(0)
    config = modern(**choices)
    model = GPT(config).eval()
    assert model.num_parameters() == parameter_count(config)
    idx = torch.randint(0, config.vocab_size, (2, config.context_length))
    with torch.no_grad():
        full, _ = model(idx)
        changed = idx.clone()
        changed[:, 9] = (changed[:, 9] + 1) % config.vocab_size
        assert torch.allclose(model(changed)[0][:, :9], full[:, :9], atol=1e-6)
        cache = KVCache(config.n_layer, config.context_length, batch_size=2)
        pieces = [model(idx[:, :7], cache=cache)[0]] + [model(idx[:, t:t + 1], cache=cache)[0] for t in range(7, 16)]
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5), "the KV cache gives the same logits"


def test_rotary_attention_scores_depend_only_on_the_distance():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    cos, sin = rotary_angles(16, 64)
    def score(query_position, key_position):
        at = slice(query_position, query_position + 1), slice(key_position, key_position + 1)
        return (rotate(q, cos[at[0]], sin[at[0]]) * rotate(k, cos[at[1]], sin[at[1]])).sum().item()
    assert score(5, 3) == pytest.approx(score(40, 38), abs=1e-4)
    assert score(5, 3) != pytest.approx(score(5, 0), abs=1e-3)
    assert torch.allclose(rotate(q, cos[7:8], sin[7:8]).norm(), q.norm())   # a rotation keeps lengths
    assert not hasattr(GPT(modern(positions="rope")), "wpe")


def test_zero_init_and_an_untied_head_are_two_settings_and_soft_capping_bounds_the_logits():
    torch.manual_seed(0)
    untied = GPT(modern(tied_head=False))
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.lm_head.weight.std() > 0.01 and untied.blocks[0].attn.proj.weight.std() > 0.001
    zero_init = GPT(modern(zero_init=True))
    assert zero_init.lm_head.weight is zero_init.wte.weight and zero_init.wte.weight.std() > 0.01
    projections = [p for n, p in zero_init.named_parameters() if n.endswith("proj.weight")]
    assert len(projections) == 2 * SMALL.n_layer and all(torch.all(p == 0) for p in projections)
    both = GPT(modern(tied_head=False, zero_init=True))
    logits, loss = both(torch.randint(0, 97, (1, 8)), torch.randint(0, 97, (1, 8)))
    assert torch.all(logits == 0) and loss.item() == pytest.approx(math.log(97), abs=1e-5)
    capped = GPT(modern(logit_softcap=2.0))
    capped.lm_head.weight.data.mul_(1000)
    logits, _ = capped(torch.randint(0, 97, (1, 8)))
    assert logits.abs().max() <= 2.0 and logits.abs().max() > 1.9


def test_unknown_choices_are_refused_with_the_allowed_ones():
    with pytest.raises(CourseError, match="norm='batchnorm' is not a valid value: it must be one of layernorm, rmsnorm"):
        modern(norm="batchnorm")
    with pytest.raises(CourseError, match="n_head=2 is not a valid value: rotary positions .* each head needs an even size"):
        GPTConfig(vocab_size=97, context_length=16, n_layer=1, n_head=2, n_embd=6, positions="rope")


def test_a_prompt_prefilled_in_chunks_gives_the_logits_of_one_pass_in_a_cache_allocated_once():
    """Several new tokens after a past (the masked branch of attention with a cache)."""
    torch.manual_seed(0)
    config = modern(positions="rope", norm="rmsnorm")
    model = GPT(config).eval()
    idx = torch.randint(0, config.vocab_size, (2, 16))
    cache = KVCache(config.n_layer, config.context_length, batch_size=2)
    with torch.no_grad():
        full, _ = model(idx)
        first = model(idx[:, :5], cache=cache)[0]
        buffer = cache.keys.data_ptr()
        pieces = [first, model(idx[:, 5:9], cache=cache)[0], model(idx[:, 9:16], cache=cache)[0]]
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)
    assert cache.keys.data_ptr() == buffer and cache.length == 16, "written in place, not copied"
    with pytest.raises(ValueError, match=r"made for 1 sequence\(s\) of 16 tokens, not 2 of 3"):
        model(idx[:, :3], cache=KVCache(config.n_layer, config.context_length))


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_left_padded_rows_in_the_cache_give_the_logits_of_each_sequence_alone(positions):
    """Prompts of different lengths in one batch: each row's positions count from its first
    real token, the padding is never attended to, and its rows repeat for a group of samples."""
    torch.manual_seed(0)
    config = modern(positions=positions)
    model = GPT(config).eval()
    short, long = torch.randint(0, config.vocab_size, (1, 4)), torch.randint(0, config.vocab_size, (1, 7))
    padded = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], dim=1), long])
    cache = KVCache(config.n_layer, config.context_length, batch_size=4, padding=torch.tensor([3, 0]))
    following = torch.randint(0, config.vocab_size, (4, 1))
    with torch.no_grad():
        prefilled = model(padded, cache=cache)[0]
        cache.repeat_rows(2)
        next_logits = model(following, cache=cache)[0]
        for row, alone in enumerate([short, long]):
            assert torch.allclose(prefilled[row, -alone.size(1):], model(alone)[0][0], atol=1e-5)
            for sample in range(2):
                continued = torch.cat([alone, following[2 * row + sample:2 * row + sample + 1]], dim=1)
                assert torch.allclose(next_logits[2 * row + sample, -1], model(continued)[0][0, -1], atol=1e-5)
    assert cache.padding.tolist() == [3, 3, 0, 0]
