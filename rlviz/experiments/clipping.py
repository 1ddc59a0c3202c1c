"""Experiments of notebook 03: what PPO's ratio clipping does, token by token.

* ``surrogate_curves``: the clipped surrogate of one token and its gradient as functions
  of rho, computed by ``rlviz.clipped_surrogate`` and autograd.
* ``clipping_cases``: the six-case table (sign of A x rho below / inside / above the range).
* ``ClippingExperiment``: a small policy taken through several inner epochs on one
  sampled batch: rho, clipfrac and which tokens stop getting a gradient.
* ``token_vs_sequence``: one response's token ratios against its GSPO sequence ratio.

Pure torch, no plotting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import Config
from ..losses import aggregate, clipped_surrogate, group_advantages, surrogate_metrics
from ..losses.checks import check_int, check_number, check_positive_int
from ..models import TinyPolicy
from ..threads import one_torch_thread

__all__ = [
    "ClippingExperiment",
    "EpochRecord",
    "clipping_cases",
    "clipped_tokens_drift",
    "flat_intervals",
    "objective_gradients",
    "surrogate_curves",
    "token_vs_sequence",
]


def _token_loss_and_grad(rho: torch.Tensor, advantage: float, eps_low: float,
                         eps_high: float | None, dual_clip: float | None):
    """Loss and d loss / d logp of single tokens at the ratios ``rho`` (N,), via autograd."""
    logp = torch.log(rho.double()).view(1, -1).requires_grad_(True)  # (1, N)
    old = torch.zeros_like(logp)  # (1, N): rho = exp(logp - 0)
    adv = torch.full((1,), float(advantage), dtype=torch.float64)  # (1,)
    loss = clipped_surrogate(logp, old, adv, eps_low=eps_low, eps_high=eps_high,
                             dual_clip=dual_clip)  # (1, N)
    (grad,) = torch.autograd.grad(loss.sum(), logp)  # (1, N)
    return loss.detach().view(-1), grad.view(-1)


def objective_gradients(ratios, advantage: float, eps_low: float = 0.2,
                        eps_high: float | None = None,
                        dual_clip: float | None = None) -> list[float]:
    """d objective / d log pi of single tokens at the given ``ratios`` (a list of floats):
    rho A where the unclipped branch is active, 0 where the token gets no gradient."""
    rho = torch.tensor([float(r) for r in ratios], dtype=torch.float64)  # (N,)
    if not bool((rho > 0).all()):
        raise ValueError(f"ratios must be > 0, got {list(ratios)}")
    _, grad = _token_loss_and_grad(rho, advantage, eps_low, eps_high, dual_clip)
    return (-grad + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0


def flat_intervals(rho: torch.Tensor, grad: torch.Tensor) -> list[tuple[float, float]]:
    """The rho intervals (lo, hi) where the gradient is exactly 0, read off a grid."""
    flat = (grad == 0).tolist()
    values = rho.tolist()
    intervals, start = [], None
    for i, is_flat in enumerate(flat):
        if is_flat and start is None:
            start = i
        if start is not None and (not is_flat or i == len(flat) - 1):
            end = i if is_flat else i - 1
            intervals.append((values[start], values[end]))
            start = None
    return intervals


def surrogate_curves(advantage: float = 1.0, eps_low: float = 0.2, eps_high: float | None = None,
                     dual_clip: float | None = None, rho_max: float = 3.0,
                     points: int = 1500) -> dict:
    """One token's clipped surrogate over a grid of rho in (0, rho_max] (step 0.002 by default).

    Returns numpy-free Python data (lists of floats):
    ``rho``; ``objective`` = -loss = min(rho A, clip(rho) A) (what PPO maximises);
    ``grad`` = d objective / d logp (rho A where the unclipped branch is active, 0 where
    the clipped one is); ``unclipped`` = rho A for reference; ``flat`` = the rho
    intervals where the gradient is exactly 0 (from autograd, not from the formula).
    """
    check_int(points, "points", low=2)
    check_number(rho_max, "rho_max", 0.0)
    rho = torch.linspace(rho_max / points, rho_max, points, dtype=torch.float64)  # (N,)
    loss, grad = _token_loss_and_grad(rho, advantage, eps_low, eps_high, dual_clip)
    objective_grad = -grad  # (N,) d(-loss)/d logp
    return {
        "rho": rho.tolist(),
        "objective": (-loss).tolist(),
        "grad": (objective_grad + 0.0).tolist(),  # + 0.0 turns -0.0 into 0.0
        "unclipped": (rho * advantage).tolist(),
        "flat": flat_intervals(rho, objective_grad) if advantage != 0 else [(rho[0].item(),
                                                                             rho[-1].item())],
    }


def clipping_cases(eps_low: float = 0.2, eps_high: float | None = None,
                   dual_clip: float | None = None, advantage: float = 1.0) -> list[dict]:
    """The case table: for A = +|A| and -|A|, rho below, inside and above the clip range
    (and above c when ``dual_clip`` is set), the token's loss, its gradient w.r.t. logp
    and whether it gets a gradient. Representative ratios: 1 - eps_low - 0.3 (below), 1
    (inside), 1 + eps_high + 0.3 (above), c + 1 (beyond the dual clip)."""
    eps_hi = eps_low if eps_high is None else eps_high
    size = abs(float(advantage))
    if size == 0:
        raise ValueError("advantage must be non-zero (its sign picks the case)")
    probes = [("below", max(1.0 - eps_low - 0.3, 0.05)), ("inside", 1.0),
              ("above", 1.0 + eps_hi + 0.3)]
    if dual_clip is not None:
        probes.append(("above c", dual_clip + 1.0))
    rows = []
    for sign in (+1.0, -1.0):
        adv = sign * size
        rho = torch.tensor([r for _, r in probes], dtype=torch.float64)
        loss, grad = _token_loss_and_grad(rho, adv, eps_low, eps_high, dual_clip)
        for (region, r), token_loss, token_grad in zip(probes, loss.tolist(), grad.tolist(),
                                                       strict=True):
            if region == "above c" and sign > 0:
                continue  # the dual clip only acts on A < 0
            rows.append({
                "A": adv, "region": region, "rho": r, "loss": token_loss + 0.0,
                "grad": -token_grad + 0.0,  # d objective / d logp
                "gets_gradient": token_grad != 0.0,
            })
    return rows


@dataclass
class EpochRecord:
    """One inner epoch of ``ClippingExperiment.run`` (all before that epoch's update).

    ratio        (B, T) rho = exp(logp - old), 1 where the mask is 0
    no_grad      (B, T) bool: response tokens with A != 0 whose d loss / d logp is exactly
                 0, read from autograd (tokens with A = 0 carry no signal at all and are
                 not counted, as in clipfrac)
    loss         the aggregated loss
    metrics      ``rlviz.surrogate_metrics``: clipfrac, approx_kl, ratio_mean, ...
    """

    epoch: int
    ratio: torch.Tensor
    no_grad: torch.Tensor
    loss: float
    metrics: dict


class ClippingExperiment:
    """A ``TinyPolicy`` with a small vocabulary, one sampled batch, several inner epochs.

    The batch: ``num_prompts`` prompts, ``group_size`` responses each (rows g*G .. g*G+G-1
    share prompt g), ``response_len`` tokens per response sampled from the policy itself
    (the token at position t is fed back as the input of position t + 1, so the demo's
    context-free model behaves as a bigram model). Reward of a response: the share of its
    tokens below ``vocab_size / 2`` (a rule anyone can check); advantages: GRPO's group
    advantages. ``old_logp`` is recorded at sampling time, so epoch 1 has rho = 1 exactly.
    """

    def __init__(self, vocab_size: int = 64, hidden_size: int = 32, num_prompts: int = 4,
                 group_size: int = 8, prompt_len: int = 4, response_len: int = 16,
                 seed: int = 0):
        self.cfg = Config(vocab_size=vocab_size, hidden_size=hidden_size, group_num=group_size,
                          input_len=prompt_len, seq_len=prompt_len + response_len)
        with one_torch_thread():  # small tensors: one thread is faster and deterministic
            self._sample_batch(num_prompts, group_size, prompt_len, response_len, seed)

    def _sample_batch(self, num_prompts, group_size, prompt_len, response_len, seed):
        vocab_size = self.cfg.vocab_size
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        self.policy = TinyPolicy(self.cfg)
        self.initial_state = {k: v.clone() for k, v in self.policy.state_dict().items()}
        batch = num_prompts * group_size
        prompts = torch.randint(0, vocab_size, (num_prompts, prompt_len), generator=generator)
        prompts = prompts.repeat_interleave(group_size, dim=0)  # (B, P)
        with torch.no_grad():
            tokens = [prompts[:, -1]]  # the last prompt token feeds the first response token
            for _ in range(response_len):
                logits = self.policy(tokens[-1].unsqueeze(1)).squeeze(1)  # (B, V)
                probs = torch.softmax(logits, dim=-1)  # (B, V)
                tokens.append(torch.multinomial(probs, 1, generator=generator).squeeze(1))
        response = torch.stack(tokens[1:], dim=1)  # (B, R)
        fed = torch.stack(tokens[:-1], dim=1)  # (B, R) the input at each response position
        self.input_ids = torch.cat([prompts, fed], dim=1)  # (B, T)
        self.actions = torch.cat([prompts, response], dim=1)  # (B, T) prompt part is masked
        self.mask = torch.zeros(batch, prompt_len + response_len)  # (B, T)
        self.mask[:, prompt_len:] = 1.0
        self.rewards = (response < vocab_size // 2).float().mean(dim=1)  # (B,)
        self.advantages = group_advantages(self.rewards, group_size)  # (B,)
        with torch.no_grad():
            self.old_logp = self.policy.log_prob(self.input_ids, self.actions)  # (B, T)

    def run(self, epochs: int = 6, lr: float = 1e-2, eps_low: float = 0.2,
            eps_high: float | None = None, dual_clip: float | None = None,
            level: str = "token", mode: str = "token-mean") -> list[EpochRecord]:
        """``epochs`` Adam steps at ``lr`` from the sampling weights, on the same batch, with
        ``old_logp`` frozen: the clipped surrogate (``rlviz.clipped_surrogate``) aggregated
        with ``mode``. Returns one ``EpochRecord`` per epoch."""
        check_positive_int(epochs, "epochs")
        check_number(lr, "lr", 0.0)
        with one_torch_thread():
            return self._run(epochs, lr, eps_low, eps_high, dual_clip, level, mode)

    def _run(self, epochs, lr, eps_low, eps_high, dual_clip, level, mode) -> list[EpochRecord]:
        self.policy.load_state_dict(self.initial_state)
        opt = torch.optim.Adam(self.policy.parameters(), lr=lr)
        clip = dict(eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip, level=level,
                    mask=self.mask)
        on = self.mask > 0  # (B, T)
        has_signal = on & (self.advantages.view(-1, 1) != 0)  # (B, T)
        records = []
        for epoch in range(1, epochs + 1):
            logp = self.policy.log_prob(self.input_ids, self.actions)  # (B, T)
            logp.retain_grad()
            per_token = clipped_surrogate(logp, self.old_logp, self.advantages, **clip)  # (B, T)
            loss = aggregate(per_token, self.mask, mode)
            opt.zero_grad()
            loss.backward()
            ratio = torch.exp(logp.detach() - self.old_logp)  # (B, T)
            records.append(EpochRecord(
                epoch=epoch,
                ratio=torch.where(on, ratio, torch.ones_like(ratio)),
                no_grad=has_signal & (logp.grad == 0),
                loss=loss.item(),
                metrics=surrogate_metrics(logp.detach(), self.old_logp, self.advantages, **clip),
            ))
            opt.step()
        return records

    def response(self, record: EpochRecord, row: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Response ``row`` at the epoch of ``record``: (logp (R,), old_logp (R,), A)."""
        check_int(row, "row", 0, self.old_logp.shape[0] - 1)
        start = self.cfg.input_len
        old = self.old_logp[row, start:]  # (R,)
        logp = old + torch.log(record.ratio[row, start:])  # (R,)
        return logp, old, float(self.advantages[row])

    def summary(self, records: list[EpochRecord], dual_clip: float | None = None) -> dict:
        """What ``ClippingRunFigure`` and the panel show, from ``run``'s records.

        ``clipfracs`` per epoch; of the last epoch: ``ratios`` and ``positive`` (A > 0) for
        each response token, ``states`` (B, R) token map (0: gets a gradient, 1: no gradient
        with A > 0, 2: no gradient with A < 0 and rho < 1, 3: no gradient with A < 0 and
        rho > 1, the dual clip), and its ``metrics``. States come from autograd (tokens
        whose gradient is exactly 0), not from the clipping rule.
        """
        last = records[-1]
        prompt_len = self.cfg.input_len
        adv = self.advantages.view(-1, 1).expand_as(last.ratio)  # (B, T)
        no_grad = last.no_grad  # (B, T), tokens with A != 0 only
        states = torch.zeros_like(last.ratio, dtype=torch.long)  # (B, T)
        states[no_grad & (adv > 0)] = 1
        states[no_grad & (adv < 0) & (last.ratio < 1)] = 2
        states[no_grad & (adv < 0) & (last.ratio > 1)] = 3
        on = self.mask > 0  # (B, T)
        return {
            "clipfracs": [r.metrics["clipfrac"] for r in records],
            "approx_kls": [r.metrics["approx_kl"] for r in records],
            "ratios": last.ratio[on].tolist(),
            "positive": (adv > 0)[on].tolist(),
            "states": states[:, prompt_len:].tolist(),
            "metrics": dict(last.metrics),
            "dual_clip": dual_clip,
        }


def clipped_tokens_drift(records: list[EpochRecord], mask: torch.Tensor) -> list[dict]:
    """What becomes of the tokens that get no gradient, epoch after epoch (notebook 03).

    For each pair of consecutive epochs (e, e + 1) of ``ClippingExperiment.run``: ``stopped``,
    the number of response tokens with no gradient at epoch e; ``moved_out``, the share of them
    whose |log rho| is larger at e + 1 (pushed further out of the clip range although their own
    gradient was 0); ``max_rho`` at e + 1; ``max_was_stopped``, whether the token holding that
    maximum had no gradient at epoch e.
    """
    on = mask > 0  # (B, T)
    rows = []
    for before, after in zip(records, records[1:]):
        stopped = before.no_grad & on  # (B, T)
        n = int(stopped.sum())
        further = (after.ratio.log().abs() > before.ratio.log().abs()) & stopped  # (B, T)
        ratio_after = torch.where(on, after.ratio, torch.zeros_like(after.ratio))  # (B, T)
        top = int(torch.argmax(ratio_after))
        rows.append({"epoch": before.epoch, "stopped": n,
                     "moved_out": float(further.sum()) / n if n else 0.0,
                     "max_rho": float(ratio_after.max()),
                     "max_was_stopped": bool(stopped.flatten()[top])})
    return rows


def token_vs_sequence(logp: torch.Tensor, old_logp: torch.Tensor, advantage: float,
                      eps_token: tuple[float, float] = (0.2, 0.2),
                      eps_sequence: tuple[float, float] = (3e-4, 4e-4)) -> dict:
    """One response (T,) under a token-level and a sequence-level (GSPO) clipped loss.

    Token level: rho_t = exp(logp_t - old_t), clipped token by token with ``eps_token``.
    Sequence level: s = exp(mean_t (logp_t - old_t)), the geometric mean of the rho_t,
    one ratio for the whole response, clipped with GSPO's tiny ``eps_sequence``.
    Returns the ratios and each token's gradient of the objective (minus the loss),
    d objective / d logp_t, under both losses, both with seq-mean-token-mean aggregation
    (one response: the mean over its tokens): rho_t A / T (token level) or s A / T
    (sequence level) where the unclipped branch is active, 0 where the token is clipped.
    The sign matches ``surrogate_curves``: positive for A > 0.
    """
    if logp.dim() != 1 or old_logp.shape != logp.shape:
        raise ValueError(f"logp and old_logp must be 1-D of equal shape, got "
                         f"{tuple(logp.shape)} and {tuple(old_logp.shape)}")
    mask = torch.ones(1, logp.shape[0], dtype=logp.dtype)  # (1, T)
    adv = torch.tensor([float(advantage)], dtype=logp.dtype)  # (1,)
    out = {}
    for level, (low, high) in (("token", eps_token), ("sequence", eps_sequence)):
        x = logp.detach().clone().view(1, -1).requires_grad_(True)  # (1, T)
        per_token = clipped_surrogate(x, old_logp.view(1, -1), adv, eps_low=low, eps_high=high,
                                      level=level, mask=mask)  # (1, T)
        loss = aggregate(per_token, mask, "seq-mean-token-mean")
        (grad,) = torch.autograd.grad(loss, x)  # (1, T) d loss / d logp
        out[f"{level}_grad"] = -grad.view(-1) + 0.0  # (T,) d objective / d logp, no -0.0
    out["token_ratio"] = torch.exp(logp.detach() - old_logp)  # (T,)
    out["sequence_ratio"] = float(torch.exp((logp.detach() - old_logp).mean()))
    return out
