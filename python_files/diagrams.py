"""The lessons' pictures of ideas, drawn from the run's own data so that they re-draw with it.

Each function draws one idea next to the lesson's code that builds it (most of them before it),
and shows it: `encoding`, `windows`, `merges`, `flow`, `heads`, `causal_mask`, `block`, `rotation`
(notebooks 01-03), `cycle` and `orthogonalized` (04), `packed_window` (05, 06), `group` (06b),
`kept_tokens` and `kv_cache` (07). Plots of results (losses, rates) stay in the lessons, beside
the numbers they show.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.patches import FancyArrowPatch, Rectangle

LEARNED, IGNORED, HIGHLIGHT = "#cfe3c3", "#eeeeee", "#f7d7a8"


def token_row(axis, y: float, texts: list[str], colors: list[str] | str = "#e8eef7", x0: float = 0.0,
              width: float = 1.0, fontsize: int = 9) -> None:
    """A row of boxes, one per token, with its text inside (spaces shown as ␣, newlines as ↵)."""
    colors = [colors] * len(texts) if isinstance(colors, str) else colors
    for i, (text, color) in enumerate(zip(texts, colors)):
        axis.add_patch(Rectangle((x0 + i * width, y - 0.4), width * 0.94, 0.8, facecolor=color, edgecolor="grey"))
        label = shown_token(text)
        axis.text(x0 + i * width + width * 0.47, y, label, ha="center", va="center", fontsize=fitted(label, fontsize))


def fitted(label: str, fontsize: float, room: int = 11) -> float:
    """A long label (<|assistant|>) gets a smaller font rather than spilling into its neighbours."""
    return fontsize * min(1.0, room / len(label)) if label else fontsize


def shown_token(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵")


def canvas(width: float, height: float, x_range: tuple[float, float], y_range: tuple[float, float], title: str):
    figure, axis = plt.subplots(figsize=(width, height))
    axis.set_xlim(*x_range)
    axis.set_ylim(*y_range)
    axis.axis("off")
    axis.set_title(title, fontsize=10)
    return figure, axis


def encoding(chunks: list[list[str]], ids: list[list[int]]) -> None:
    """One text encoded: its bytes, cut into the pre-split's chunks (gaps: no merge crosses
    them), each chunk's tokens after all its merges, and their ids. `chunks` holds each chunk's
    tokens as text, `ids` their ids."""
    widths = [[len(token.encode("utf-8")) for token in tokens] for tokens in chunks]
    total = sum(map(sum, widths)) + len(chunks) - 1
    _, axis = canvas(0.42 * total + 1.6, 2.3, (-2.6, total), (-0.7, 2.6),
                     "encoding: bytes, cut into chunks, merged inside each chunk, then ids")
    x = 0.0
    for tokens, token_widths, token_ids in zip(chunks, widths, ids):
        data = "".join(tokens).encode("utf-8")    # a byte past ASCII is shown in hex
        token_row(axis, 2, [chr(b) if b < 128 else f"{b:02x}" for b in data], x0=x, fontsize=8)
        for token, width, token_id in zip(tokens, token_widths, token_ids):
            axis.add_patch(Rectangle((x, 0.6), width - 0.06, 0.8, facecolor=HIGHLIGHT, edgecolor="grey"))
            axis.text(x + width / 2, 1, shown_token(token), ha="center", va="center", fontsize=9)
            axis.text(x + width / 2, 0, str(token_id), ha="center", va="center", fontsize=8)
            x += width
        x += 1                      # the gap between two chunks
    for y, label in ((2, "bytes"), (1, "tokens"), (0, "ids")):
        axis.text(-0.3, y, label, ha="right", va="center", fontsize=9)
    plt.show()


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


def flow(stages: list[tuple[str, str]], title: str) -> None:
    """Stages one after another, left to right: each a box with its name (lines of up to 12
    characters) and, under it, what it holds in this run (counts, shapes), joined by arrows."""
    _, axis = canvas(2.15 * len(stages), 2.0, (-0.1, 2 * len(stages) - 0.3), (-1.2, 1.0), title)
    for i, (name, holds) in enumerate(stages):
        axis.text(2 * i + 0.8, 0.3, name, ha="center", va="center", fontsize=9,
                  bbox={"boxstyle": "round", "facecolor": "#e8eef7"})
        axis.text(2 * i + 0.8, -0.55, holds, ha="center", va="center", fontsize=8, color="#333333")
        if i:   # from the right of the box before to the left of this one (names of up to 12 characters a line)
            axis.annotate("", xy=(2 * i + 0.18, 0.3), xytext=(2 * i - 0.58, 0.3), arrowprops={"arrowstyle": "->"})
    plt.show()


def cycle(stages: list[tuple[str, str]], title: str) -> None:
    """Stages around a circle, clockwise from the top, each joined to the next and the last back
    to the first: a loop that runs once per step. Each stage is (its name, what it holds in this
    run)."""
    _, axis = canvas(6.4, 5.0, (-2.3, 2.3), (-1.75, 1.9), title)
    points = [(1.25 * math.sin(2 * math.pi * i / len(stages)), 1.25 * math.cos(2 * math.pi * i / len(stages)))
              for i in range(len(stages))]
    for (x, y), (name, holds) in zip(points, stages):
        axis.text(x, y, f"{name}\n{holds}", ha="center", va="center", fontsize=8,
                  bbox={"boxstyle": "round", "facecolor": "#e8eef7"})
    for i, start in enumerate(points):   # an arc from each stage to the next, shortened at both ends
        end = points[(i + 1) % len(points)]
        axis.add_patch(FancyArrowPatch(start, end, connectionstyle="arc3,rad=-0.3", arrowstyle="->",
                                       mutation_scale=14, shrinkA=34, shrinkB=34, color="C1"))
    plt.show()


def orthogonalized(gradient, orthogonal) -> None:
    """What a 2 x 2 matrix does to the unit circle: the gradient stretches it into a thin ellipse
    (one direction dominates); Newton–Schulz's version of it keeps the ellipse's axes and evens out
    their lengths (U Vᵀ would make every singular value exactly 1; five iterations leave them in a
    band around it): a step that moves every direction by about the same amount."""
    figure, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
    angles = [2 * math.pi * i / 200 for i in range(201)]
    circle = [(math.cos(a), math.sin(a)) for a in angles]
    for axis, matrix, title in ((axes[0], gradient, "the gradient G (normalized)"),
                                (axes[1], orthogonal, "after Newton–Schulz: about U Vᵀ")):
        (a, b), (c, d) = matrix
        axis.plot(*zip(*circle), color="lightgrey", linestyle=":", label="the unit circle")
        axis.plot([a * x + b * y for x, y in circle], [c * x + d * y for x, y in circle], color="C0",
                  label="the circle, mapped by the matrix")
        for column, color in ((0, "C1"), (1, "C2")):   # where the two axes' unit vectors land
            axis.annotate("", xy=(matrix[0][column], matrix[1][column]), xytext=(0, 0),
                          arrowprops={"arrowstyle": "->", "color": color})
        axis.set_aspect("equal")
        axis.set_xlim(-1.5, 1.5)
        axis.set_ylim(-1.5, 1.5)
        axis.set_xlabel("x")
        axis.set_title(title, fontsize=9)
    axes[0].set_ylabel("y")
    axes[0].legend(fontsize=7, loc="lower left")
    figure.suptitle("Muon in two dimensions: the ellipse's axes kept, their lengths evened out", fontsize=10)
    plt.tight_layout()
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
    _, axis = canvas(10, 3.4, (-0.5, 10.5), (-0.9, 3.6),
                     f"queries, keys, values: {C} channels split into {n_head} heads of {C // n_head}")
    axis.add_patch(Rectangle((0, 0.8), 1.2, 2, facecolor="#e8eef7", edgecolor="grey"))
    axis.text(0.6, 1.8, f"x\n({T}, {C})", ha="center", va="center", fontsize=9)
    for row, name in enumerate(("queries", "keys", "values")):
        y = 2.6 - row * 1.05
        axis.add_patch(FancyArrowPatch((1.3, 1.8), (2.3, y), arrowstyle="->", mutation_scale=10))
        for h in range(n_head):
            axis.add_patch(Rectangle((2.4 + h * 0.5, y - 0.35), 0.5, 0.7, facecolor=colors[h], alpha=0.6,
                                     edgecolor="grey"))
        axis.text(2.4 + n_head * 0.25, y + 0.45, f"{name} ({T}, {C})", ha="center", fontsize=8)
    axis.text(1.75, -0.1, "one linear layer\n(qkv) makes all three", ha="center", va="top", fontsize=7)
    axis.add_patch(FancyArrowPatch((2.6 + n_head * 0.5, 1.6), (5.2, 1.6), arrowstyle="->", mutation_scale=12))
    axis.text(3.9 + n_head * 0.25, 1.45, "split: view,\ntranspose", ha="center", va="top", fontsize=8)
    width = 4.8 / n_head
    for h in range(n_head):
        x = 5.4 + h * width
        for part, letter in enumerate("qkv"):
            axis.add_patch(Rectangle((x + part * 0.3, 1.0), 0.27, 1.2, facecolor=colors[h], alpha=0.6,
                                     edgecolor="grey"))
            axis.text(x + part * 0.3 + 0.135, 0.85, letter, ha="center", va="top", fontsize=8)
        axis.text(x + 0.43, 2.35, f"head {h}", ha="center", fontsize=8)
    axis.text(5.4 + 2.4, -0.35, f"each head: q, k, v of ({T}, {C // n_head}); it attends on its own, then the heads\n"
              "are put side by side again and one more linear layer (proj) mixes them", ha="center", va="top", fontsize=8)
    plt.show()


def causal_mask(words: list[str]) -> None:
    """Which tokens each query may see: itself and the tokens before it; the scores above the
    diagonal become -inf, so their weights are 0."""
    T = len(words)
    figure, axis = plt.subplots(figsize=(0.55 * T + 2, 0.5 * T + 1.2))
    allowed = [[1 if key <= query else 0 for key in range(T)] for query in range(T)]
    axis.imshow(allowed, cmap=ListedColormap(["#f2f2f2", "#7bbf7b"]), vmin=0, vmax=1)
    for query in range(T):
        for key in range(T):
            axis.text(key, query, "" if key <= query else "−∞", ha="center", va="center", fontsize=8, color="grey")
    labels = [shown_token(w) for w in words]
    axis.set_xticks(range(T), labels, rotation=90, fontsize=8)
    axis.set_yticks(range(T), labels, fontsize=8)
    axis.set_xlabel("key: the token looked at")
    axis.set_ylabel("query: the token looking")
    axis.set_title("the causal mask: green is seen; grey (−∞) is the future", fontsize=10)
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


def rotation(head_size: int, positions: range, pairs: tuple[int, ...] = (0, 2, 4), base: float = 10_000.0) -> None:
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


def packed_window(targets: list[str], counted: list[bool], per_row: int = 16,
                  title: str = "a fine-tuning window: green targets are in the loss, grey ones are only read") -> None:
    """The targets of a fine-tuning window, row after row: green where the loss counts them
    (the assistant's tokens and its end token), grey where it does not."""
    rows = math.ceil(len(targets) / per_row)
    _, axis = canvas(0.75 * per_row + 1, 0.62 * rows + 0.9, (-0.2, per_row + 0.2), (-rows + 0.4, 0.8), title)
    for row in range(rows):
        part = slice(row * per_row, (row + 1) * per_row)
        token_row(axis, -row, targets[part], colors=[LEARNED if c else IGNORED for c in counted[part]], fontsize=7)
    plt.show()


def group(question: str, answers: list[str], rewards: list[float], weights: list[float]) -> None:
    """A reinforcement group: the answers to one question, their rewards, and each answer's
    weight (its reward minus the group's mean): above the mean pushed up, below pushed down."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 0.42 * len(answers) + 1.3), sharey=True,
                                         gridspec_kw={"width_ratios": [1, 1]})
    rows = range(len(answers))
    left.barh(rows, rewards, color="C0")
    left.axvline(sum(rewards) / len(rewards), color="grey", linestyle=":", label="the group's mean")
    left.set_yticks(rows, [a[:40] + ("…" if len(a) > 40 else "") for a in answers], fontsize=8)
    left.invert_yaxis()
    left.set_xlim(0, 1.05)
    left.set_xlabel("reward")
    left.legend(fontsize=8, loc="lower right")
    right.barh(rows, weights, color=["C2" if w > 0 else "C3" if w < 0 else "lightgrey" for w in weights])
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlim(-1, 1)
    right.set_xlabel("weight = reward − mean  (green: made likelier, red: less likely)")
    figure.suptitle(f"one group: {len(answers)} sampled answers to {question!r}", fontsize=10)
    plt.tight_layout()
    plt.show()


def kept_tokens(probabilities: list[float], labels: list[str], k: int, p: float) -> None:
    """The likeliest tokens, largest first, and which of them top-k and top-p keep: top-k the
    first k, top-p the first ones whose probabilities reach p together."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 3), sharey=True)
    total, nucleus = 0.0, 0
    for probability in probabilities:
        if total >= p:
            break
        total, nucleus = total + probability, nucleus + 1
    for axis, keep, title in ((axes[0], k, f"top-k, k = {k}: the {k} likeliest"),
                              (axes[1], nucleus, f"top-p, p = {p}: the likeliest until their sum reaches {p}")):
        axis.bar(range(len(probabilities)), probabilities,
                 color=["C0" if i < keep else "lightgrey" for i in range(len(probabilities))])
        axis.set_xticks(range(len(labels)), [shown_token(label) for label in labels], rotation=90, fontsize=8)
        axis.set_xlabel("the likeliest next tokens, largest first")
        axis.set_title(title, fontsize=9)
    cumulative = [sum(probabilities[:i + 1]) for i in range(len(probabilities))]
    axes[1].plot(range(len(probabilities)), cumulative, "o-", color="C1", markersize=3, label="sum so far")
    axes[1].axhline(p, color="C1", linestyle=":")
    axes[1].legend(fontsize=8)
    axes[0].set_ylabel("probability")
    plt.tight_layout()
    plt.show()


def kv_cache(prompt: list[str], answer: list[str]) -> None:
    """What each generation step runs through the model. Step 1 reads the prompt (the *prefill*)
    and writes the first answer token; each later step writes one more. Without a cache, every
    step runs the prompt and the answer so far again; with it, only the newest token, whose query
    reads the keys and values stored at the earlier steps."""
    tokens = prompt + answer
    steps = len(answer)
    figure, axes = plt.subplots(1, 2, figsize=(12, 0.5 * steps + 1.4))
    for axis, cached, title in ((axes[0], False, "without a cache: each step runs every token again"),
                                (axes[1], True, "with a KV cache: the prompt once, then one token a step")):
        for step in range(steps):
            seen = len(prompt) + step          # the tokens that go in at this step, or are cached
            for position in range(seen):
                new = not cached or step == 0 or position == seen - 1
                axis.add_patch(Rectangle((position, -step - 0.4), 0.94, 0.8, edgecolor="grey",
                                         facecolor=HIGHLIGHT if new else "#e8eef7"))
                label = shown_token(tokens[position])
                axis.text(position + 0.47, -step, label, ha="center", va="center", fontsize=fitted(label, 7, room=8))
            axis.text(seen + 0.1, -step, f"→ {shown_token(answer[step])}", va="center", fontsize=7, color="C2")
        axis.set_xlim(-0.1, len(tokens) + 1.5)
        axis.set_ylim(-steps + 0.4, 0.8)
        axis.set_yticks([-s for s in range(steps)], [f"step {s + 1}" for s in range(steps)], fontsize=8)
        axis.set_xticks([])
        for side in axis.spines.values():
            side.set_visible(False)
        axis.set_title(title, fontsize=9)
    figure.suptitle("orange: run through the model at this step; blue: read from the cache; green: the token it writes",
                    fontsize=9)
    plt.tight_layout()
    plt.show()
