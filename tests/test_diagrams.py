"""The lessons' diagrams draw what they are given: checked on the figure each one leaves."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from python_files import diagrams  # noqa: E402


@pytest.fixture
def drawn(monkeypatch):
    """The figure a diagram shows, kept instead of shown."""
    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    yield figures
    plt.close("all")


def patches_colored(axis, color: str) -> int:
    return sum(mcolors.same_color(patch.get_facecolor(), color) for patch in axis.patches)


def test_top_p_keeps_the_likeliest_tokens_until_their_sum_reaches_p(drawn):
    diagrams.kept_tokens([0.4, 0.3, 0.2, 0.1], ["a", "b", "c", "d"], k=3, p=0.5)
    top_k, top_p = drawn[0].axes
    assert patches_colored(top_k, "C0") == 3
    assert patches_colored(top_p, "C0") == 2      # 0.4, then 0.7 >= 0.5


def test_a_packed_window_colors_the_targets_the_loss_counts(drawn):
    diagrams.packed_window(list("abcdefghij"), [False, False, True, True, True, False, True, False, False, True],
                           per_row=4)
    axis = drawn[0].axes[0]
    assert patches_colored(axis, diagrams.LEARNED) == 5
    assert patches_colored(axis, diagrams.IGNORED) == 5


def test_the_causal_mask_hides_every_later_token(drawn):
    diagrams.causal_mask(["a", "b", "c", "d"])
    assert sum(text.get_text() == "−∞" for text in drawn[0].axes[0].texts) == 4 * 3 // 2


def test_a_kv_cache_runs_the_prompt_once_then_one_token_per_step(drawn):
    diagrams.kv_cache(["p", "q", "r"], ["a", "b", "c", "d"])
    without, cached = drawn[0].axes
    assert patches_colored(without, diagrams.HIGHLIGHT) == 3 + 4 + 5 + 6     # prompt and answer so far, each step
    assert patches_colored(cached, diagrams.HIGHLIGHT) == 3 + 1 + 1 + 1


def test_a_group_colors_answers_by_the_sign_of_their_weight(drawn):
    diagrams.group("q?", ["x", "y", "z"], [1.0, 0.0, 0.5], [0.5, -0.5, 0.0])
    weights = drawn[0].axes[1]
    assert [patches_colored(weights, color) for color in ("C2", "C3", "lightgrey")] == [1, 1, 1]


def test_encoding_draws_a_box_per_byte_and_per_token_with_its_id(drawn):
    diagrams.encoding([["json"], [".d", "umps"], ["é"]], [[5], [6, 7], [8]])
    axis = drawn[0].axes[0]
    assert patches_colored(axis, "#e8eef7") == 4 + 6 + 2      # one box per byte: é is two
    assert patches_colored(axis, diagrams.HIGHLIGHT) == 4     # one per token
    assert {"5", "6", "7", "8"} <= {text.get_text() for text in axis.texts}


def test_a_flow_writes_each_stage_and_what_it_holds_with_an_arrow_between_two(drawn):
    diagrams.flow([("documents", "5,349"), ("tokens", "1,287,842"), ("train.bin", "2.58 MB")], "pipeline")
    axis = drawn[0].axes[0]
    arrows = [t for t in axis.texts if type(t).__name__ == "Annotation"]
    assert [t.get_text() for t in axis.texts if t not in arrows] == ["documents", "5,349", "tokens", "1,287,842",
                                                                     "train.bin", "2.58 MB"]
    assert len(arrows) == 2


def test_a_cycle_joins_every_stage_to_the_next_and_the_last_back_to_the_first(drawn):
    diagrams.cycle([("batch", "(2, 3)"), ("forward", "loss 8.3"), ("backward", "grads")], "a step")
    axis = drawn[0].axes[0]
    assert [t.get_text() for t in axis.texts] == ["batch\n(2, 3)", "forward\nloss 8.3", "backward\ngrads"]
    assert len(axis.patches) == 3                  # three arrows for three stages: the loop is closed


def test_orthogonalized_maps_the_circle_by_each_matrix(drawn):
    diagrams.orthogonalized([[2.0, 0.0], [0.0, 0.5]], [[1.0, 0.0], [0.0, 1.0]])
    stretched, evened = drawn[0].axes
    mapped = [line for line in stretched.lines if line.get_color() == "C0"][0]
    assert max(mapped.get_xdata()) == pytest.approx(2.0) and max(mapped.get_ydata()) == pytest.approx(0.5, abs=1e-3)
    circle = [line for line in evened.lines if line.get_color() == "C0"][0]
    assert max(circle.get_xdata()) == pytest.approx(1.0) and max(circle.get_ydata()) == pytest.approx(1.0, abs=1e-3)
