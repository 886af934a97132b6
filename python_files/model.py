"""A GPT in the style of GPT-2: token + position embeddings, pre-norm transformer blocks,
causal self-attention, a GELU MLP, a final LayerNorm, and an output head that shares its
weights with the token embedding.

GPT-2's layout is the default (GPT-2's weights load into it). Seven settings of `GPTConfig`
switch on the choices that small-model speedruns since GPT-2 found to learn faster, each a
few lines here, each measured by `benchmarks/ablations.py`:

- ``positions="rope"``: rotary position embeddings (RoFormer, 2021) instead of a learned
  table: queries and keys are rotated by an angle that grows with the position, so attention
  scores depend on how far apart two tokens are, not on where they are;
- ``norm="rmsnorm"``: RMSNorm (2019), LayerNorm without the mean and the bias;
- ``mlp="relu2"``: relu(x)^2 instead of GELU in the MLP (Primer, 2021);
- ``qk_norm=True``: queries and keys RMS-normalized per head, which keeps attention logits
  in range at high learning rates;
- ``tied_head=False``: an output head of its own instead of the token embedding's matrix;
- ``zero_init=True``: the layers that write into the residual stream (each block's two output
  projections) and an untied head start at zero: every block starts as the identity, the
  head silent;
- ``logit_softcap=c``: logits squashed smoothly into (-c, c) by c * tanh(logits / c).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .settings import check_settings, require, setting


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = setting(low=1)
    context_length: int = setting(low=1)      # the longest sequence the model sees
    n_layer: int = setting(low=1)
    n_head: int = setting(low=1)
    n_embd: int = setting(low=1)
    dropout: float = setting(0.0, low=0, high=1, below=True)
    # embedding rows rounded up to a multiple of this: matrix shapes that GPU tensor cores
    # like (64 on GPUs). The extra ids are never predicted: their logits are cut off.
    vocab_multiple: int = setting(1, low=1)
    # False: the textbook softmax(q k^T / sqrt(d)) v, written out (slower; for comparison)
    fused_attention: bool = True
    # GPT-2's layout by default; the modern choices are described at the top of this file
    positions: str = setting("learned", choices=("learned", "rope"))
    norm: str = setting("layernorm", choices=("layernorm", "rmsnorm"))
    mlp: str = setting("gelu", choices=("gelu", "relu2"))
    qk_norm: bool = False
    tied_head: bool = True
    zero_init: bool = False
    logit_softcap: float | None = setting(None, low=0, above=True, optional=True)

    def __post_init__(self):
        check_settings(self)
        require(self, "n_head", self.n_embd % self.n_head == 0,
                f"n_embd={self.n_embd} must be divisible by it (each head gets n_embd / n_head features)")
        require(self, "n_head", self.positions != "rope" or self.head_size % 2 == 0,
                f"rotary positions turn pairs of features, so each head needs an even size, "
                f"and n_embd={self.n_embd} / n_head gives {self.n_embd // self.n_head}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def padded_vocab_size(self) -> int:
        return -(-self.vocab_size // self.vocab_multiple) * self.vocab_multiple


# the settings of GPTConfig that give GPT-2's own layout (the defaults)
GPT2_LAYOUT = {"positions": "learned", "norm": "layernorm", "mlp": "gelu", "qk_norm": False,
               "tied_head": True, "zero_init": False, "logit_softcap": None}


class KVCache:
    """The keys and values of every token seen so far, per layer, for fast generation.

    Without a cache, each new token re-runs the model over the whole sequence; with it, only
    the new token goes through the model and attends to the stored keys and values. They are
    written into tensors allocated once, for `capacity` positions of `batch_size` sequences
    (at the first call, which tells their number format and device), not copied anew at each
    token. Prompts can be prefilled once each and their rows repeated (`repeat_rows`): the
    samples of a group all continue the same prompt.

    Prompts of different lengths share a batch left-padded to the longest: `padding` (one count
    per row) says how many padding tokens open each row. The model then numbers each row's
    positions from its first real token and never attends to the padding.
    """

    def __init__(self, n_layer: int, capacity: int, batch_size: int = 1, padding: torch.Tensor | None = None):
        self.n_layer, self.capacity, self.batch_size = n_layer, capacity, batch_size
        self.padding = padding
        # (n_layer, batch_size, heads, capacity, head_size) each, once the first keys arrive
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.length = 0     # tokens stored so far: the position of the next one

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Write the keys and values (rows, heads, T, head_size) of `layer` for the T tokens after
        the `length` stored; return all of them so far, (rows, heads, length + T, head_size)."""
        rows, end = k.size(0), self.length + k.size(2)
        if self.keys is None:
            shape = (self.n_layer, self.batch_size, k.size(1), self.capacity, k.size(3))
            self.keys, self.values = k.new_zeros(shape), v.new_zeros(shape)
        if end > self.capacity or rows > self.batch_size:
            raise ValueError(f"The cache was made for {self.batch_size} sequence(s) of {self.capacity} "
                             f"tokens, not {rows} of {end}.")
        self.keys[layer, :rows, :, self.length:end] = k
        self.values[layer, :rows, :, self.length:end] = v
        return self.keys[layer, :rows, :, :end], self.values[layer, :rows, :, :end]

    def repeat_rows(self, times: int) -> None:
        """Each of the first batch_size / times rows becomes `times` rows in a row: prompts
        prefilled once each, then continued by a group of samples each."""
        prompts = self.batch_size // times
        for stored in (self.keys, self.values):
            stored[:, :, :, :self.length] = stored[:, :prompts, :, :self.length].repeat_interleave(times, dim=1)
        if self.padding is not None:
            self.padding = self.padding.repeat_interleave(times)


def normalization(config: GPTConfig, size: int) -> nn.Module:
    return nn.LayerNorm(size) if config.norm == "layernorm" else nn.RMSNorm(size)


def rotary_angles(head_size: int, length: int, base: float = 10_000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, (length, head_size / 2): position p turns the
    pair of features i by p / base^(2i / head_size), fast for the first pairs, slow for the last."""
    frequencies = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), frequencies)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair of features (the first half of a head with its second half) of
    x (B, heads, T, head_size) by the angles of its position."""
    first, second = x.float().chunk(2, dim=-1)
    rotated = torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)
    return rotated.type_as(x)


class CausalSelfAttention(nn.Module):
    """Every position attends to itself and the positions before it, in `n_head` heads."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)   # queries, keys, values at once
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout
        self.fused = config.fused_attention
        self.q_norm = nn.RMSNorm(config.head_size) if config.qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(config.head_size) if config.qk_norm else nn.Identity()

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) -> q, k, v, each (B, n_head, T, C // n_head)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        return tuple(t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.split_heads(x)
        q, k = self.q_norm(q), self.k_norm(k)
        if rotary is not None:      # (cos, sin) of these T positions
            q, k = rotate(q, *rotary), rotate(k, *rotary)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        past = k.size(2) - T     # tokens already in the cache before this call
        # softmax(q k^T / sqrt(d)) v with the future masked out, in one fused kernel
        # (FlashAttention or memory-efficient attention on GPUs)
        mask, causal = visible_keys(T, past, cache.padding if cache is not None else None, x.device)
        dropout = self.dropout if self.training else 0.0
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, dropout_p=dropout)
        else:
            y = textbook_attention(q, k, v, mask if not causal else torch.ones(
                T, T, dtype=torch.bool, device=x.device).tril(), dropout)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


def visible_keys(T: int, past: int, padding: torch.Tensor | None, device) -> tuple[torch.Tensor | None, bool]:
    """What each of T queries may attend to, after `past` cached tokens: (mask, is_causal) for
    attention. A token sees itself and the tokens before it; in left-padded rows, not the padding."""
    if padding is None:
        if past == 0:
            return None, True
        if T == 1:
            return None, False      # one new token may see everything before it
        return torch.ones(T, past + T, dtype=torch.bool, device=device).tril(past), False
    keys = torch.arange(past + T, device=device)
    queries = torch.arange(past, past + T, device=device).unsqueeze(1)
    sees = (keys <= queries) & (keys >= padding.view(-1, 1, 1, 1))     # (rows, 1, T, past + T)
    # a padding token sees itself: a query that sees nothing would give NaN, which the zero
    # weights of the others would not cancel (0 * NaN is NaN)
    return sees | (keys == queries), False


def textbook_attention(q, k, v, mask: torch.Tensor | None, dropout: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v, step by step: the (T, T) score matrix is materialized."""
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return F.dropout(scores.softmax(dim=-1), p=dropout) @ v


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.relu_squared = config.mlp == "relu2"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc(x)
        hidden = F.relu(hidden).square() if self.relu_squared else F.gelu(hidden, approximate="tanh")
        return self.proj(hidden)


class Block(nn.Module):
    """Pre-norm: normalize, transform, add back. The residual stream itself is never normalized."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = normalization(config, config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln2 = normalization(config, config.n_embd)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln1(x), cache, layer, rotary))
        return x + self.dropout(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, generator: torch.Generator | None = None):
        """A new model with random weights, drawn from `generator` (a run's own, so that its seed
        decides them; None: the process's random numbers)."""
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.padded_vocab_size, config.n_embd)   # token embeddings
        if config.positions == "learned":
            self.wpe = nn.Embedding(config.context_length, config.n_embd)   # position embeddings
        else:   # recomputed, not learned: kept out of the checkpoint
            cos, sin = rotary_angles(config.head_size, config.context_length)
            self.register_buffer("rotary_cos", cos, persistent=False)
            self.register_buffer("rotary_sin", sin, persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = normalization(config, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        if config.tied_head:
            self.lm_head.weight = self.wte.weight   # weight tying: one matrix reads and writes tokens
        self.initialize(generator)

    def initialize(self, generator: torch.Generator | None) -> None:
        """GPT-2's initialization: weights from N(0, 0.02), biases 0."""
        config = self.config
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02, generator=generator)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, parameter in self.named_parameters():
            writes_to_residual = name.endswith("proj.weight")
            if config.zero_init and (writes_to_residual or name == "lm_head.weight" and not config.tied_head):
                nn.init.zeros_(parameter)   # each block starts as the identity, the head silent
            elif writes_to_residual:
                # GPT-2: scale the layers that write into the residual stream by
                # 1/sqrt(2 * n_layer), so the stream's variance does not grow with depth
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer),
                                generator=generator)

    def use_dropout(self, rate: float) -> None:
        """Change the dropout of a built model (fine-tuning may drop out what pretraining did not)."""
        self.config = replace(self.config, dropout=rate)
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = rate
            elif isinstance(module, CausalSelfAttention):
                module.dropout = rate

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None, cache: KVCache | None = None):
        """Logits (B, T, vocab) for token ids (B, T); with `targets`, also the mean loss.

        `loss_mask` (B, T) of 0/1 restricts the loss to some positions: supervised
        fine-tuning learns only from the assistant's tokens (reinforcement puts a weight of
        any sign there: see reinforce.py). With a `cache`, `idx` continues
        the tokens already in it.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.context_length:
            raise ValueError(f"A sequence of {start + T} tokens is longer than the context of "
                             f"{self.config.context_length}.")
        x, rotary = self.embed(idx, start, cache.padding if cache is not None else None)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer, rotary)
        if cache is not None:
            cache.length += T
        logits = self.lm_head(self.ln_f(x))[..., :self.config.vocab_size]
        if self.config.logit_softcap:
            logits = self.config.logit_softcap * torch.tanh(logits / self.config.logit_softcap)
        if targets is None:
            return logits, None
        return logits, masked_cross_entropy(logits, targets, loss_mask)

    def embed(self, idx: torch.Tensor, start: int, padding: torch.Tensor | None = None):
        """The token embeddings of positions start, start + 1, ..., with the learned position
        embeddings added, or with the rotary angles that attention will apply. In left-padded
        rows, each row's positions count from its first real token (the padding gets 0)."""
        positions = torch.arange(start, start + idx.size(1), device=idx.device)
        if padding is not None:
            positions = (positions - padding.unsqueeze(1)).clamp(min=0)       # (B, T)
        if self.config.positions == "learned":
            return self.drop(self.wte(idx) + self.wpe(positions)), None
        cos, sin = self.rotary_cos[positions], self.rotary_sin[positions]
        if padding is not None:    # (B, T, head_size / 2) -> (B, 1, T, ...): the same for every head
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return self.drop(self.wte(idx)), (cos, sin)

    def num_parameters(self) -> int:
        """Trainable parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                         loss_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean loss over the targets `loss_mask` keeps (all of them without a mask).

    A 0/1 mask gives the mean over the positions it keeps; weights of any sign (reinforcement:
    an answer's reward minus its group's mean, on each of its tokens) give the weighted sum
    over the total weight: longer answers count more, and the scale of the rewards cancels
    out (GRPO divides by their spread for the same reason).
    """
    return summed_loss(logits, targets, loss_mask) / loss_weight(targets, loss_mask).clamp(min=1)


def summed_loss(logits: torch.Tensor, targets: torch.Tensor, loss_mask: torch.Tensor | None) -> torch.Tensor:
    """The loss of every target, weighted by `loss_mask`, summed: what the training loop divides by
    the weight of a whole step (see `loss_weight`), so that micro-batches add up exactly."""
    return masked_sum(token_losses(logits, targets), loss_mask)


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The cross-entropy of each target, flattened: (B * T,), in fp32."""
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")


def masked_sum(losses: torch.Tensor, loss_mask: torch.Tensor | None) -> torch.Tensor:
    """Flattened losses summed, each weighted by `loss_mask` (B, T) when there is one."""
    if loss_mask is None:
        return losses.sum()
    return (losses * loss_mask.reshape(-1).to(losses.dtype)).sum()


def loss_weight(targets: torch.Tensor, loss_mask: torch.Tensor | None) -> torch.Tensor:
    """How much the targets of a batch weigh: their number, or the total of the mask's weights."""
    if loss_mask is None:
        return torch.tensor(float(targets.numel()), device=targets.device)
    return loss_mask.float().abs().sum()


def parameter_count(config: GPTConfig) -> int:
    """The parameter count, derived by hand from the architecture.

    Embeddings: V*d (tokens, shared with the head; V padded) + T*d (positions).
    Each block: LayerNorms 2 * 2d; attention d*3d + 3d and d*d + d; MLP d*4d + 4d and 4d*d + d,
    which is 12 d^2 + 13 d in all. Final LayerNorm: 2d.
    The modern choices: rotary positions have no table (-T*d); an RMSNorm has a gain and no
    bias (d instead of 2d); QK-norm adds two RMSNorms of head size per block; an untied head
    adds its own V*d.
    """
    d, V = config.n_embd, config.padded_vocab_size
    norm = 2 * d if config.norm == "layernorm" else d
    block = 12 * d * d + 9 * d + 2 * norm + (2 * config.head_size if config.qk_norm else 0)
    return (V * d * (1 if config.tied_head else 2)
            + (config.context_length * d if config.positions == "learned" else 0)
            + config.n_layer * block + norm)


def flops_per_token(config: GPTConfig) -> int:
    """Training FLOPs per token (forward + backward), as in the PaLM paper's appendix B.

    6 per parameter that multiplies the token (the weights, the output head included, not the
    position table nor an untied input embedding, which are looked up) plus the attention
    scores and their weighted sum: 12 * layers * d * T.
    """
    looked_up = ((config.context_length * config.n_embd if config.positions == "learned" else 0)
                 + (0 if config.tied_head else config.padded_vocab_size * config.n_embd))
    matmul_parameters = parameter_count(config) - looked_up
    return 6 * matmul_parameters + 12 * config.n_layer * config.n_embd * config.context_length
