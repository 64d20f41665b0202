"""Sampling (temperature, top-k, top-p), greedy and beam search: one loop over a step function.

`search` is the loop: it feeds tokens to a step function and lets a strategy pick the next
ones. The LM's sampling (`Sampler`), greedy decoding (`Greedy`) and beam search (`Beam`) are
strategies of that one loop; nothing here knows about models.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from seqtool.errors import ConfigError


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, not {temperature}")
    if top_k < 0:
        raise ConfigError(f"--top-k must be >= 0, not {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"--top-p must be in (0, 1], not {top_p}")


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits (B, V) -> ids (B,). Temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.size(-1) and top_p >= 1.0:
        # Fast path: sample among the k best directly (no full-vocabulary mask and softmax).
        vals, idx = torch.topk(logits, top_k, dim=-1)  # (B, k)
        pick = torch.multinomial(vals.softmax(-1), 1, generator=generator)  # (B, 1)
        return idx.gather(-1, pick).squeeze(-1)
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# -- one loop over a step function ---------------------------------------------------------------
#
# A step function takes the last tokens (N,) and a decoder state for N rows and returns scores
# (N, V) and the new state; `reorder(state, index)` picks rows of a state (to follow surviving
# beams or drop finished sentences).

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]
ReorderFn = Callable[[Any, torch.Tensor], Any]


class Strategy:
    """Picks the next tokens from a step's scores. `choose` returns the tokens to feed next
    (N',) and the rows of the state that go on (None: all), or (None, None) when done."""

    max_steps: int | None = None  # None: until the strategy is done

    def first(self) -> torch.Tensor:
        raise NotImplementedError

    def choose(self, scores: torch.Tensor, t: int) -> tuple[Any, Any]:
        raise NotImplementedError

    def start_state(self, state: Any, reorder: ReorderFn | None) -> Any:
        """The state the loop starts from (a beam copies each row K times)."""
        return state

    def result(self) -> Any:
        """What the search found, once the loop has run."""
        return None


def search(
    step: StepFn,
    state: Any,
    strategy: Strategy,
    reorder: ReorderFn | None = None,
    max_steps: int | None = None,
) -> Iterator[torch.Tensor]:
    """Run `step` from the strategy's first tokens until it is done (or max_steps); yields the
    tokens chosen at each step, so a caller can stream them."""
    max_steps = strategy.max_steps if max_steps is None else max_steps
    state = strategy.start_state(state, reorder)
    cur = strategy.first()
    for t in itertools.count() if max_steps is None else range(max_steps):
        scores, state = step(cur, state)
        cur, keep = strategy.choose(scores, t)
        if cur is None:
            return
        if keep is not None:
            state = reorder(state, keep)
        yield cur


def decode(step: StepFn, state: Any, strategy: Strategy, reorder: ReorderFn | None = None) -> Any:
    """Run the search to its end and return what the strategy found."""
    for _ in search(step, state, strategy, reorder):
        pass
    return strategy.result()


class Sampler(Strategy):
    """Sample (or with temperature 0 take the argmax of) every row's next token."""

    def __init__(
        self,
        start: torch.Tensor,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        self.start, self.args = start, (temperature, top_k, top_p, generator)

    def first(self) -> torch.Tensor:
        return self.start

    def choose(self, scores: torch.Tensor, t: int) -> tuple[torch.Tensor, None]:
        return sample(scores, *self.args), None


@dataclass
class Hypothesis:
    ids: list[int]  # without BOS/EOS
    logprob: float  # sum of token log-probabilities (EOS included when it was produced)
    score: float  # logprob / length penalty: what the beam ranks by


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha; alpha 0 ranks by raw log-probability."""
    return ((5.0 + length) / 6.0) ** alpha


class Greedy(Strategy):
    """Argmax decoding for a batch; each sentence stops at EOS or its max_len (B,) tokens.
    `min_steps` keeps every row stepping that long (free-running loss needs it); `alpha` is
    the length penalty of the hypotheses' scores. Result: one Hypothesis per sentence."""

    def __init__(
        self, batch: int, bos: int, eos: int, max_len: torch.Tensor, min_steps: int = 0,
        alpha: float = 0.0,
    ) -> None:  # fmt: skip
        self.batch, self.bos, self.eos, self.min_steps = batch, bos, eos, min_steps
        self.alpha, self.limit = alpha, max_len.tolist()
        self.max_steps = max(max(self.limit, default=0), min_steps)
        self.logp_sum = torch.zeros(batch)
        self.out: list[list[int]] = [[] for _ in range(batch)]
        self.done = [False] * batch

    def first(self) -> torch.Tensor:
        return torch.full((self.batch,), self.bos, dtype=torch.long)

    def choose(self, logp: torch.Tensor, t: int) -> tuple[Any, None]:
        best, cur = logp.float().max(-1)  # (B,), (B,)
        toks, vals = cur.tolist(), best.tolist()
        for b in range(self.batch):
            if self.done[b]:
                continue
            self.logp_sum[b] += vals[b]
            if toks[b] == self.eos:
                self.done[b] = True
            else:
                self.out[b].append(toks[b])
                self.done[b] = t + 1 >= self.limit[b]
        if all(self.done) and t + 1 >= self.min_steps:
            return None, None
        return cur, None

    def result(self) -> list[Hypothesis]:
        hyps = []
        for b in range(self.batch):
            out = self.out[b]
            n = len(out) + (1 if len(out) < self.limit[b] else 0)  # + EOS when it was produced
            lp = float(self.logp_sum[b])
            hyps.append(Hypothesis(out, lp, lp / length_penalty(n, self.alpha)))
        return hyps


class Beam(Strategy):
    """Batched beam search with GNMT length penalty. A sentence ends once `beam` hypotheses
    have finished (so beam 1 is exactly greedy) or at its max_len (B,) tokens, where the live
    beams are finished as they are. Row r of the live state belongs to sentence
    active[r // K]; finished sentences are dropped from the state."""

    def __init__(
        self, batch: int, bos: int, eos: int, max_len: torch.Tensor, beam: int = 5,
        alpha: float = 1.0, n_best: int = 1,
    ) -> None:  # fmt: skip
        if beam < 1 or not 1 <= n_best <= beam:
            raise ConfigError(f"need beam >= 1 and 1 <= n-best <= beam (got {beam}, {n_best})")
        self.K, self.bos, self.eos, self.alpha, self.n_best = beam, bos, eos, alpha, n_best
        self.limit = max_len.tolist()
        self.active = list(range(batch))
        self.scores = torch.full((batch, beam), float("-inf"))
        self.scores[:, 0] = 0.0  # all beams start identical: only one may expand at step 1
        self.history = torch.full((batch * beam, 0), bos, dtype=torch.long)  # (N, t)
        self.finished: list[list[Hypothesis]] = [[] for _ in range(batch)]

    def first(self) -> torch.Tensor:
        return torch.full((len(self.active) * self.K,), self.bos, dtype=torch.long)

    def start_state(self, state: Any, reorder: ReorderFn | None) -> Any:
        return reorder(state, torch.arange(len(self.active)).repeat_interleave(self.K))

    def _finish(self, b: int, ids: list[int], v: float, t: int) -> None:
        self.finished[b].append(Hypothesis(ids, v, v / length_penalty(t, self.alpha)))

    def choose(self, logp: torch.Tensor, t0: int) -> tuple[Any, Any]:
        K, t = self.K, t0 + 1
        V = logp.size(-1)
        cand = (self.scores.view(-1, 1) + logp.float()).view(len(self.active), K * V)  # (A, K*V)
        # 2K candidates guarantee K that do not end, even if K of them are EOS.
        vals, idx = cand.topk(min(2 * K, K * V), dim=-1)  # (A, 2K)
        src_beam, tok = idx // V, idx % V
        vals_l, beam_l, tok_l = vals.tolist(), src_beam.tolist(), tok.tolist()
        keep_rows, keep_tok, keep_scores, still = [], [], [], []
        for a, b in enumerate(self.active):
            rows, toks_b, sc = [], [], []
            for j in range(len(tok_l[a])):
                v = vals_l[a][j]
                if v == float("-inf"):
                    break
                row = a * K + beam_l[a][j]
                if tok_l[a][j] == self.eos:
                    if j < K:  # an EOS outside the top K would not have survived
                        self._finish(b, self.history[row].tolist(), v, t)
                    continue
                if len(rows) < K:
                    rows.append(row)
                    toks_b.append(tok_l[a][j])
                    sc.append(v)
            if len(self.finished[b]) >= K:
                continue
            if t >= self.limit[b] or not rows:
                for row, tk, v in zip(rows, toks_b, sc, strict=True):
                    self._finish(b, self.history[row].tolist() + [tk], v, t)
                continue
            while len(rows) < K:  # pad with dead beams (score -inf) to keep K rows per sentence
                rows.append(rows[0])
                toks_b.append(toks_b[0])
                sc.append(float("-inf"))
            still.append(b)
            keep_rows += rows
            keep_tok += toks_b
            keep_scores.append(sc)
        if not still:
            return None, None
        index = torch.tensor(keep_rows)
        self.history = torch.cat([self.history[index], torch.tensor(keep_tok).unsqueeze(1)], dim=1)
        self.scores = torch.tensor(keep_scores)  # (A', K)
        self.active = still
        return torch.tensor(keep_tok), index

    def result(self) -> list[list[Hypothesis]]:
        """The n_best hypotheses per sentence, best first."""
        return [sorted(f, key=lambda h: -h.score)[: self.n_best] for f in self.finished]
