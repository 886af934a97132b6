"""The lessons' pictures of ideas, drawn from the run's own data so that they re-draw with it.

Each function draws one idea, before the lesson's code builds it, and shows it:
`windows`, `merges`, `heads`, `causal_mask`, `block`, `rotation` (notebooks 01-03),
`packed_window` (06), `group` (06b), `kept_tokens` and `kv_cache` (07). Plots of results
(losses, rates) stay in the lessons, beside the numbers they show.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Rectangle

LEARNED, IGNORED, HIGHLIGHT = "#cfe3c3", "#eeeeee", "#f7d7a8"


def token_row(axis, y: float, texts: list[str], colors: list[str] | str = "#e8eef7", x0: float = 0.0,
              width: float = 1.0, fontsize: int = 9) -> None:
    """A row of boxes, one per token, with its text inside (spaces shown as ␣, newlines as ↵)."""
    colors = [colors] * len(texts) if isinstance(colors, str) else colors
    for i, (text, color) in enumerate(zip(texts, colors)):
        axis.add_patch(Rectangle((x0 + i * width, y - 0.4), width * 0.94, 0.8, facecolor=color, edgecolor="grey"))
        axis.text(x0 + i * width + width * 0.47, y, shown_token(text), ha="center", va="center", fontsize=fontsize)


def shown_token(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵")


def canvas(width: float, height: float, x_range: tuple[float, float], y_range: tuple[float, float], title: str):
    figure, axis = plt.subplots(figsize=(width, height))
    axis.set_xlim(*x_range)
    axis.set_ylim(*y_range)
    axis.axis("off")
    axis.set_title(title, fontsize=10)
    return figure, axis


def windows(tokens: list[str]) -> None:
    """A window of T + 1 tokens: the inputs are its first T, the targets its last T, so that
    the token under each input is the one that follows it."""
    T = len(tokens) - 1
    _, axis = canvas(1.05 * T + 3, 2.2, (-1.6, T + 1.2), (-0.7, 2.7),
                     f"one window of {T + 1} tokens gives {T} examples: targets are the inputs shifted by one")
    token_row(axis, 2, tokens, x0=0)
    token_row(axis, 1, tokens[:T], x0=0)
    token_row(axis, 0, tokens[1:], colors=HIGHLIGHT, x0=0)
    for y, label in ((2, "window"), (1, "inputs"), (0, "targets")):
        axis.text(-0.15, y, label, ha="right", va="center", fontsize=9)
    for t in range(T):
        axis.add_patch(FancyArrowPatch((t + 0.47, 0.6), (t + 0.47, 0.4), arrowstyle="->", mutation_scale=8))
    plt.show()


def merges(steps: list[tuple[str, list[str]]]) -> None:
    """A text as a row of tokens after each merge: (the merged pair, the tokens) per row,
    the bytes first; the tokens a merge made are highlighted."""
    longest = max(len(tokens) for _, tokens in steps)
    _, axis = canvas(0.62 * longest + 3, 0.55 * len(steps) + 0.6, (-3.2, longest), (-len(steps) + 0.4, 0.8),
                     "byte-pair merges: each merge joins the most frequent neighbouring pair everywhere")
    for row, (pair, tokens) in enumerate(steps):
        colors = ["#e8eef7" if not pair or token != pair else HIGHLIGHT for token in tokens]
        token_row(axis, -row, tokens, colors=colors, fontsize=8)
        axis.text(-0.2, -row, "bytes" if not pair else f"merge {row}: {shown_token(pair)}", ha="right",
                  va="center", fontsize=8)
    plt.show()


def heads(T: int, C: int, n_head: int) -> None:
    """x (T, C) is projected to queries, keys and values, each (T, C); each is cut along its
    channels into n_head blocks of C / n_head: head h attends with block h of all three."""
    colors = [plt.cm.tab10(h) for h in range(n_head)]
    _, axis = canvas(10, 3.2, (-0.5, 10.5), (-0.6, 3.6),
                     f"queries, keys, values: {C} channels split into {n_head} heads of {C // n_head}")
    axis.add_patch(Rectangle((0, 0.8), 1.2, 2, facecolor="#e8eef7", edgecolor="grey"))
    axis.text(0.6, 1.8, f"x\n({T}, {C})", ha="center", va="center", fontsize=9)
    for row, name in enumerate(("queries", "keys", "values")):
        y = 2.6 - row * 1.05
        axis.add_patch(FancyArrowPatch((1.3, 1.8), (2.3, y), arrowstyle="->", mutation_scale=10))
        axis.text(1.9, y + 0.12, "W_" + name[0], fontsize=8, ha="center")
        for h in range(n_head):
            axis.add_patch(Rectangle((2.4 + h * 0.5, y - 0.35), 0.5, 0.7, facecolor=colors[h], alpha=0.6,
                                     edgecolor="grey"))
        axis.text(2.4 + n_head * 0.25, y + 0.5, f"{name} ({T}, {C})", ha="center", fontsize=8)
    axis.add_patch(FancyArrowPatch((2.6 + n_head * 0.5, 1.6), (5.2, 1.6), arrowstyle="->", mutation_scale=12))
    axis.text(3.9 + n_head * 0.25, 1.35, "split: view,\ntranspose", ha="center", va="top", fontsize=8)
    for h in range(n_head):
        x = 5.4 + h * (4.8 / n_head)
        for row in range(3):
            axis.add_patch(Rectangle((x, 2.3 - row * 0.8), 0.35, 0.6, facecolor=colors[h], alpha=0.6,
                                     edgecolor="grey"))
        axis.text(x + 0.17, -0.25, f"head {h}\nq k v\n({T}, {C // n_head}) each", ha="center", va="top", fontsize=7)
    plt.show()


def causal_mask(words: list[str]) -> None:
    """Which tokens each query may see: itself and the tokens before it; the scores above the
    diagonal become -inf, so their weights are 0."""
    T = len(words)
    figure, axis = plt.subplots(figsize=(0.55 * T + 2, 0.5 * T + 1.2))
    allowed = [[1.0 if key <= query else 0.0 for key in range(T)] for query in range(T)]
    axis.imshow(allowed, cmap="Greens", vmin=-0.3, vmax=1.4)
    for query in range(T):
        for key in range(T):
            axis.text(key, query, "" if key <= query else "−∞", ha="center", va="center", fontsize=8, color="grey")
    labels = [shown_token(w) for w in words]
    axis.set_xticks(range(T), labels, rotation=90, fontsize=8)
    axis.set_yticks(range(T), labels, fontsize=8)
    axis.set_xlabel("key: the token looked at")
    axis.set_ylabel("query: the token looking")
    axis.set_title("the causal mask: green is seen, −∞ is the future", fontsize=10)
    plt.show()


def block(layouts: dict[str, tuple[str, str, str]]) -> None:
    """Pre-norm blocks side by side: for each layout, (its norm, its attention, its MLP)."""
    figure, axes = plt.subplots(1, len(layouts), figsize=(4.2 * len(layouts), 5.2))
    for axis, (title, (norm, attention, mlp)) in zip(list(axes) if len(layouts) > 1 else [axes], layouts.items()):
        steps = ["x  (B, T, C)", norm, attention, "+", norm, mlp, "+", "x  (B, T, C)"]
        heights = list(range(len(steps)))[::-1]
        for step, y in zip(steps, heights):
            axis.text(0.5, y, step, ha="center", va="center", fontsize=10,
                      bbox={"boxstyle": "round", "facecolor": "#e8eef7" if step != "+" else "white"})
        for y in heights[:-1]:
            axis.annotate("", xy=(0.5, y - 0.7), xytext=(0.5, y - 0.3), arrowprops={"arrowstyle": "->"})
        for start, end in ((heights[0], heights[3]), (heights[3], heights[6])):   # the shortcuts
            axis.annotate("", xy=(0.8, end), xytext=(0.8, start),
                          arrowprops={"arrowstyle": "->", "connectionstyle": "arc3,rad=-0.4", "color": "C1"})
        axis.text(1.0, heights[1] - 0.5, "residual", color="C1", ha="center", rotation=90)
        axis.set_xlim(0, 1.1)
        axis.set_ylim(-0.6, len(steps) - 0.4)
        axis.axis("off")
        axis.set_title(title, fontsize=10)
    plt.show()


def rotation(head_size: int, positions: range, pairs: tuple[int, ...] = (0, 3, 12), base: float = 10_000.0) -> None:
    """Rotary positions: a query's pair i is a point in a plane, turned by position * theta_i
    (theta_i = base^(-2i / head_size)); the first pairs turn fast, the last ones slowly."""
    figure, axes = plt.subplots(1, len(pairs), figsize=(3.6 * len(pairs), 3.6))
    for axis, pair in zip(axes, pairs):
        theta = base ** (-2 * pair / head_size)
        for position in positions:
            angle = position * theta
            color = plt.cm.viridis(position / max(positions))
            axis.annotate("", xy=(math.cos(angle), math.sin(angle)), xytext=(0, 0),
                          arrowprops={"arrowstyle": "->", "color": color})
            axis.text(1.12 * math.cos(angle), 1.12 * math.sin(angle), str(position), fontsize=8,
                      ha="center", va="center", color=color)
        axis.add_patch(plt.Circle((0, 0), 1, fill=False, color="lightgrey"))
        axis.set_xlim(-1.3, 1.3)
        axis.set_ylim(-1.3, 1.3)
        axis.set_aspect("equal")
        axis.axis("off")
        axis.set_title(f"pair {pair} of {head_size // 2}: {math.degrees(theta):.1f}° per position", fontsize=9)
    figure.suptitle(f"the same vector at positions {positions.start}..{positions.stop - 1}", fontsize=10)
    plt.show()
