"""Notebook 05's computations: group advantages, the std and length biases, and the demo's
1/group_num scale. Pure torch and math; the figures live in ``rlviz.plots.groups``.

Conventions (``../shared/reference/formulas.md``): rows ``g*G .. g*G+G-1`` of a batch are the
G responses to prompt g; with binary rewards and k successes among G, the group mean is k/G
and the unbiased std is ``s_k = sqrt(k (G - k) / (G (G - 1)))``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..algorithms import LOSS_FN_REGISTRY, loss_table_markdown
from ..algorithms.library import TRL_AGGREGATES_AS
from ..algorithms.table import spec_defaults
from ..config import Config
from ..losses import (
    aggregate,
    clipped_surrogate,
    group_advantages,
    grpo_loss,
)
from ..losses.advantages import ADV_SCALES
from ..losses.aggregation import AGG_MODES
from ..losses.checks import check_int, check_number, check_one_of
from ..masks import compute_mask, mask_from_lengths
from ..models import TinyPolicy
from ..threads import one_torch_thread

__all__ = [
    "AGG_MODES",
    "P_GRID",
    "P_SAMPLED",
    "ADV_SCALES",
    "BATCH_KINDS",
    "BATCH_STD_SPREAD",
    "LIBRARY_SETTINGS",
    "LibrarySetting",
    "abs_advantage_curve",
    "abs_advantage_sum_given_k",
    "advantage_steps",
    "algorithms_table_markdown",
    "aggregation_coefficients",
    "binomial_pmf",
    "demo_scale_vs_prompts",
    "expected_abs_advantage",
    "group_gradient_scale",
    "length_bias_data",
    "length_bias_summary",
    "optimizer_update_vs_prompts",
    "sampled_abs_advantage",
    "sampled_share_all_equal",
    "settings_table",
    "settings_table_markdown",
    "share_all_equal",
    "small_config",
    "std_bias_data",
    "token_weights",
]

# The batch-wide reward std when the batch's prompts have success rates spread evenly over
# [0, 1]: the rewards are then Bernoulli(1/2) overall, std sqrt(1/2 * 1/2) = 0.5.
BATCH_STD_SPREAD = 0.5


def _check_group(group_size, p=None):
    check_int(group_size, "group_size", low=2)
    if p is not None:
        check_number(p, "p", 0.0, 1.0, low_open=False, high_open=False)  # a success rate


def _check_scale(scale):
    check_one_of(scale, "scale", ADV_SCALES)


# ---------------------------------------------------------------------------------------
# 1. group advantages step by step
# ---------------------------------------------------------------------------------------
def advantage_steps(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> dict:
    """Every intermediate of GRPO's advantage for a batch of ``rewards`` (B,).

    Returns (all float64 tensors):

    * ``group_mean``, ``group_std`` (num_groups,): mean and unbiased (n - 1) std per prompt
    * ``grpo`` (B,): ``rlviz.group_advantages(rewards, G, "group", eps)``,
      (r - group mean) / (std + eps) (DeepSeekMath)
    * ``group_centred`` (B,): ``rlviz.group_advantages(..., "none")``, r - group mean (Dr. GRPO)
    * ``batch_centred`` (B,): r - mean over the whole batch, the demo's
      ``compute_advantage_from_reward``
    * ``sign_differs`` (B,) bool: sign(batch_centred) != sign(group_centred), with 0 as its
      own sign (values below 1e-12 in size count as 0)
    * ``all_equal`` (num_groups,) bool: groups whose rewards are all the same
    """
    if not isinstance(rewards, torch.Tensor) or rewards.dim() != 1:
        raise ValueError(f"rewards must be a 1-D tensor, got {type(rewards).__name__} "
                         f"{tuple(getattr(rewards, 'shape', ()))}")
    r = rewards.to(torch.float64)  # (B,)
    grpo = group_advantages(r, group_size, "group", eps)  # (B,); checks group_size
    group_centred = group_advantages(r, group_size, "none")  # (B,)
    grouped = r.view(-1, group_size)  # (num_groups, G)
    batch_centred = r - r.mean()  # (B,), the demo's advantage

    def sign(x):
        return torch.where(x.abs() < 1e-12, torch.zeros_like(x), torch.sign(x))

    return {
        "group_mean": grouped.mean(dim=1),  # (num_groups,)
        "group_std": grouped.std(dim=1) if group_size > 1 else torch.zeros(len(grouped),
                                                                            dtype=torch.float64),
        "grpo": grpo,
        "group_centred": group_centred,
        "batch_centred": batch_centred,
        "sign_differs": sign(batch_centred) != sign(group_centred),
        "all_equal": grouped.amax(dim=1) == grouped.amin(dim=1),
    }


# ---------------------------------------------------------------------------------------
# 2. groups with no signal, and the std bias (Dr. GRPO)
# ---------------------------------------------------------------------------------------
def binomial_pmf(group_size: int, p: float) -> list[float]:
    """P(k successes among G) for k = 0..G, k ~ Binomial(G, p)."""
    _check_group(group_size, p)
    return [math.comb(group_size, k) * p**k * (1.0 - p) ** (group_size - k)
            for k in range(group_size + 1)]


def share_all_equal(p: float, group_size: int) -> float:
    """Probability that all G binary rewards of a prompt are equal: ``p^G + (1 - p)^G``.

    Such a group has advantage 0 for every response, so the prompt teaches nothing.
    """
    _check_group(group_size, p)
    return p**group_size + (1.0 - p) ** group_size


def sampled_share_all_equal(p_values, group_size: int, num_groups: int = 2000,
                            seed: int = 0) -> torch.Tensor:
    """The same share measured: for each p, draw ``num_groups`` groups of G Bernoulli(p)
    rewards, run ``rlviz.group_advantages`` and count the groups whose advantages are all 0.
    Returns (len(p_values),) float64."""
    _check_group(group_size)
    generator = torch.Generator().manual_seed(seed)
    shares = []
    with one_torch_thread():
        for p in p_values:
            _check_group(group_size, float(p))
            rewards = (torch.rand(num_groups * group_size, generator=generator,
                                  dtype=torch.float64) < p).double()  # (N*G,)
            adv = group_advantages(rewards, group_size, "group")  # (N*G,)
            no_signal = (adv.view(num_groups, group_size) == 0).all(dim=1)  # (N,)
            shares.append(float(no_signal.double().mean()))
    return torch.tensor(shares, dtype=torch.float64)


def abs_advantage_sum_given_k(k: int, group_size: int, scale: str = "group",
                              eps: float = 0.0, batch_std: float = BATCH_STD_SPREAD) -> float:
    """sum_i |A_i| of one group with k successes among G binary rewards (sum_i A_i is 0).

    none:  2 k (G - k) / G                       (G - k rewards sit k/G below the mean, ...)
    group: 2 k (G - k) / G / (s_k + eps);  with eps = 0: 2 sqrt(k (G - k) (G - 1) / G)
    batch: 2 k (G - k) / G / (batch_std + eps), batch_std = the std of the whole batch
    k = 0 or k = G gives 0 (all equal: no signal).
    """
    _check_group(group_size)
    _check_scale(scale)
    if not 0 <= k <= group_size:
        raise ValueError(f"k must lie in [0, group_size={group_size}], got {k}")
    if k in (0, group_size):
        return 0.0
    centred = 2.0 * k * (group_size - k) / group_size
    if scale == "none":
        return centred
    if scale == "group":
        std = math.sqrt(k * (group_size - k) / (group_size * (group_size - 1)))
        return centred / (std + eps)
    return centred / (batch_std + eps)


def expected_abs_advantage(p: float, group_size: int, scale: str = "group", eps: float = 0.0,
                           batch_std: float = BATCH_STD_SPREAD) -> float:
    """E[sum_i |A_i|] for a prompt of success rate p: ``abs_advantage_sum_given_k`` averaged
    over k ~ Binomial(G, p). Without the std it equals 2 (G - 1) p (1 - p)."""
    pmf = binomial_pmf(group_size, p)
    return sum(w * abs_advantage_sum_given_k(k, group_size, scale, eps, batch_std)
               for k, w in enumerate(pmf))


def group_gradient_scale(p: float, group_size: int, scale: str = "none") -> float:
    """Expected group-advantage policy gradient over the true one, exactly, for a one-token
    Bernoulli policy: action 1 (reward 1) with probability p = sigmoid(theta), else 0.

    The estimate of one group of G actions is g = (1/G) sum_i A_i d log pi(a_i)/d theta with
    A = ``rlviz.group_advantages(rewards, G, scale)`` and d log pi(a)/d theta = a - p; its
    expectation is summed over all 2^G outcomes and divided by the true gradient
    dE[r]/dtheta = p (1 - p). With ``scale="none"`` it is exactly (G - 1) / G: the group mean
    contains the response's own reward (A_i = (G-1)/G * (r_i - mean of the others)).
    """
    _check_group(group_size, p)
    if scale not in ("none", "group"):  # one group is the whole batch: "batch" means "group"
        raise ValueError(f"scale must be 'none' or 'group', got {scale!r}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1 (else no gradient), got {p!r}")
    outcomes = torch.tensor(list(itertools.product((0.0, 1.0), repeat=group_size)),
                            dtype=torch.float64)  # (2^G, G)
    prob = (outcomes * p + (1 - outcomes) * (1 - p)).prod(dim=1)  # (2^G,)
    adv = group_advantages(outcomes.flatten(), group_size, scale).view_as(outcomes)  # (2^G, G)
    estimate = (adv * (outcomes - p)).mean(dim=1)  # (2^G,) one group's gradient estimate
    return float((prob * estimate).sum()) / (p * (1 - p))


def abs_advantage_curve(p_values, group_size: int, scale: str = "group", eps: float = 0.0,
                        batch_std: float = BATCH_STD_SPREAD) -> torch.Tensor:
    """``expected_abs_advantage`` on many p at once, (len(p_values),) float64: the Binomial
    pmf matrix (P, G + 1) times the per-k values (G + 1,). For the slider panels."""
    _check_group(group_size)
    p = torch.as_tensor(list(p_values), dtype=torch.float64).view(-1, 1)  # (P, 1)
    if bool(((p < 0) | (p > 1)).any()):
        raise ValueError("p_values must lie in [0, 1]")
    k = torch.arange(group_size + 1, dtype=torch.float64).view(1, -1)  # (1, G+1)
    comb = torch.tensor([math.comb(group_size, j) for j in range(group_size + 1)],
                        dtype=torch.float64).view(1, -1)  # (1, G+1)
    pmf = comb * p**k * (1.0 - p) ** (group_size - k)  # (P, G+1); 0**0 = 1 in torch
    per_k = torch.tensor([abs_advantage_sum_given_k(j, group_size, scale, eps, batch_std)
                          for j in range(group_size + 1)], dtype=torch.float64)  # (G+1,)
    return pmf @ per_k  # (P,)


def sampled_abs_advantage(p_values, group_size: int, scale: str = "group", eps: float = 1e-6,
                          num_batches: int = 1000, seed: int = 0) -> dict:
    """Mean of sum_i |A_i| per prompt, measured through ``rlviz.group_advantages``.

    Each of ``num_batches`` batches holds one group of G Bernoulli(p) rewards for every p in
    ``p_values`` (so with an even grid over [0, 1] the batch mixes easy and hard prompts,
    as ``scale="batch"`` assumes). Returns float64 tensors (len(p_values),): ``mean`` and
    ``stderr`` (standard error of that mean), plus ``batch_std``, the average std of the
    batches' rewards (what "batch" divides by).
    """
    _check_group(group_size)
    _check_scale(scale)
    p = torch.as_tensor(list(p_values), dtype=torch.float64)  # (P,)
    generator = torch.Generator().manual_seed(seed)
    uniform = torch.rand(num_batches, len(p), group_size, generator=generator,
                         dtype=torch.float64)  # (N, P, G)
    rewards = (uniform < p.view(1, -1, 1)).double()  # (N, P, G)
    with one_torch_thread():
        if scale == "batch":  # each batch has its own std: one call per batch
            per_batch = []
            for batch in rewards:  # (P, G): one batch of P prompts
                adv = group_advantages(batch.reshape(-1), group_size, scale, eps)  # (P*G,)
                per_batch.append(adv.view(len(p), group_size).abs().sum(dim=1))  # (P,)
            sums = torch.stack(per_batch)  # (N, P)
        else:  # per-group statistics only: all batches in one call gives the same numbers
            adv = group_advantages(rewards.reshape(-1), group_size, scale, eps)  # (N*P*G,)
            sums = adv.view(num_batches, len(p), group_size).abs().sum(dim=2)  # (N, P)
    return {
        "mean": sums.mean(dim=0),
        "stderr": sums.std(dim=0) / math.sqrt(num_batches),
        "batch_std": float(rewards.view(num_batches, -1).std(dim=1).mean()),
    }


# ---------------------------------------------------------------------------------------
# 3. aggregation and the length bias, by autograd through rlviz.aggregate
# ---------------------------------------------------------------------------------------
def aggregation_coefficients(mask: torch.Tensor, mode: str,
                             max_len: int | None = None) -> torch.Tensor:
    """d aggregate(l, mask, mode) / d l_it, (B, T) float64: the weight each token's loss
    has in the final number, found by autograd (not by formula)."""
    per_token = torch.zeros(mask.shape, dtype=torch.float64, requires_grad=True)  # (B, T)
    loss = aggregate(per_token, mask, mode, max_len)
    (grad,) = torch.autograd.grad(loss, per_token)
    return grad  # (B, T)


def token_weights(lengths, rewards, mode: str, max_len: int = 32, scale: str = "group",
                  eps: float = 1e-6) -> dict:
    """The gradient weight every token gets from one group of responses, by autograd.

    lengths (G,) response lengths in [0, max_len]; rewards (G,) one group's rewards.
    The advantages come from ``rlviz.group_advantages(rewards, G, scale, eps)``; the loss is
    ``rlviz.aggregate(rlviz.clipped_surrogate(logp, logp.detach(), A), mask, mode, max_len)``
    at rho = 1 (the first inner step), and the weight of token t of response i is
    ``w_it = -d loss / d logp_it``: how hard one gradient step pushes that token's
    log-prob up (w > 0) or down (w < 0).

    Returns float64 tensors: ``weights`` (G, max_len), ``totals`` (G,) = sum_t w_it,
    ``per_token`` (G,) the weight of each token of response i (0 for empty responses),
    ``advantages`` (G,), ``mask`` (G, max_len).
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)  # (G,)
    rewards = torch.as_tensor(rewards, dtype=torch.float64)  # (G,)
    if lengths.dim() != 1 or rewards.shape != lengths.shape:
        raise ValueError(f"lengths and rewards must be 1-D of the same length, got "
                         f"{tuple(lengths.shape)} and {tuple(rewards.shape)}")
    group = len(lengths)
    mask = mask_from_lengths(lengths, max_len, dtype=torch.float64)  # (G, T)
    adv = group_advantages(rewards, group, scale, eps)  # (G,)
    logp = torch.zeros(group, max_len, dtype=torch.float64, requires_grad=True)  # (G, T)
    per_token_loss = clipped_surrogate(logp, logp.detach(), adv, mask=mask)  # (G, T) = -A
    loss = aggregate(per_token_loss, mask, mode, max_len)
    (grad,) = torch.autograd.grad(loss, logp)
    weights = -grad * mask  # (G, T)
    totals = weights.sum(dim=1)  # (G,)
    per_token = totals / lengths.clamp_min(1).double()  # (G,)
    return {"weights": weights, "totals": totals, "per_token": per_token,
            "advantages": adv, "mask": mask}


def length_bias_summary(lengths, rewards, max_len: int = 32, scale: str = "group",
                        eps: float = 1e-6) -> dict:
    """``token_weights`` under each of the four modes: mode -> {"per_token", "totals"}
    as Python lists (one entry per response)."""
    out = {}
    for mode in AGG_MODES:
        result = token_weights(lengths, rewards, mode, max_len, scale, eps)
        out[mode] = {"per_token": result["per_token"].tolist(),
                     "totals": result["totals"].tolist()}
    return out


# ---------------------------------------------------------------------------------------
# 4. the demo's 1/group_num: a sum over prompts
# ---------------------------------------------------------------------------------------
def small_config(group_size: int = 4) -> Config:
    """The demo's Config at a size that runs in milliseconds (vocab 64, hidden 32, 16
    positions of which 4 are prompt), algorithm "grpo", beta_kl 0 (to isolate the scale)."""
    return Config(algo="grpo", vocab_size=64, hidden_size=32, seq_len=16, input_len=4,
                  group_num=group_size, beta_kl=0.0, device="cpu")


BATCH_KINDS = ("independent", "copies")


def _group_batch(cfg: Config, num_prompts: int, seed: int, kind: str = "independent"):
    """P prompts x G responses: input_ids and actions (P*G, T), and the group advantages
    (P*G,) of binary rewards, drawn from a generator seeded with ``seed + 1``.

    ``"independent"``: every prompt gets its own random responses and fair-coin rewards, so
    the prompts' gradients are unrelated. ``"copies"``: one such group repeated P times,
    so every prompt pushes the same way (the most the prompts can agree).
    """
    check_one_of(kind, "kind", BATCH_KINDS)
    generator = torch.Generator().manual_seed(seed + 1)
    groups = num_prompts if kind == "independent" else 1
    size = groups * cfg.group_num
    prompts = torch.randint(0, cfg.vocab_size, (groups, 1, cfg.seq_len),
                            generator=generator)  # (P, 1, T)
    input_ids = prompts.expand(-1, cfg.group_num, -1).reshape(size, cfg.seq_len)  # (B, T)
    actions = torch.randint(0, cfg.vocab_size, (size, cfg.seq_len), generator=generator)
    rewards = (torch.rand(size, generator=generator) < 0.5).float()  # (B,)
    if kind == "copies":
        input_ids = input_ids.repeat(num_prompts, 1)  # (P*G, T)
        actions = actions.repeat(num_prompts, 1)  # (P*G, T)
        rewards = rewards.repeat(num_prompts)  # (P*G,)
    return input_ids, actions, group_advantages(rewards, cfg.group_num, "group")


def _fresh_policy(cfg: Config, seed: int, input_ids, actions):
    """The same initial TinyPolicy for every run, and its log-probs as the "old" ones."""
    torch.manual_seed(seed)
    policy = TinyPolicy(cfg)
    with torch.no_grad():
        old_logp = policy.log_prob(input_ids, actions)  # (B, T)
    return policy, old_logp


def _both_losses(cfg, policy, old_logp, input_ids, actions, advantages) -> dict:
    """{"demo": the demo's grpo_loss (sum over prompts / G), "mean": the mean over groups
    (rlviz.aggregate with seq-mean-token-mean)} for the same batch."""
    logp = policy.log_prob(input_ids, actions)  # (B, T)
    batch, seq_len = logp.shape
    mask = compute_mask(batch, seq_len, cfg.input_len, "cpu", logp.dtype)  # (B, T)
    len_oi = torch.full((batch,), seq_len - cfg.input_len, dtype=torch.long)  # (B,)
    demo = grpo_loss(logp, old_logp, old_logp, advantages, mask, len_oi, cfg.group_num,
                     cfg.clip_range, cfg.beta_kl)
    per_token = clipped_surrogate(logp, old_logp, advantages, cfg.clip_range, mask=mask)
    mean = aggregate(per_token, mask, "seq-mean-token-mean")
    return {"demo": demo, "mean": mean}


def _grad_norm(loss, params) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True)
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))


def demo_scale_vs_prompts(num_prompts=(1, 2, 4, 8, 16), group_size: int = 4,
                          kind: str = "independent", adam_lr: float = 1e-2,
                          seed: int = 0) -> dict:
    """Loss and gradient norm of the demo's ``grpo_loss`` against the number of prompts P,
    next to the mean over groups (``aggregate(..., "seq-mean-token-mean")``).

    For each P: a TinyPolicy (``small_config``, same initial weights for every P), a batch of
    P prompts x G responses of the given ``kind`` (see ``_group_batch``) with binary rewards
    and ``rlviz.group_advantages``, then

    * ``loss_first_step``: max |loss| of both at rho = 1 (the first inner step; always ~0),
    * ``grad_demo``, ``grad_mean``: the gradient norms there,
    * ``loss_demo``, ``loss_mean``: each loss on the second inner step, after one Adam step
      of size ``adam_lr`` on that same loss (Adam moves both to nearly the same policy),
    * ``demo_over_mean``: loss_demo / loss_mean (P when both policies agree).
    Returns lists over P.
    """
    cfg = small_config(group_size)
    keys = ("num_prompts", "grad_demo", "grad_mean", "loss_first_step", "loss_demo",
            "loss_mean", "demo_over_mean")
    out = {k: [] for k in keys}
    with one_torch_thread():
        for num in num_prompts:
            input_ids, actions, adv = _group_batch(cfg, num, seed, kind)  # adv (B,)
            out["num_prompts"].append(num)
            first_step = 0.0
            for which in ("demo", "mean"):
                policy, old_logp = _fresh_policy(cfg, seed, input_ids, actions)
                params = list(policy.parameters())
                losses = _both_losses(cfg, policy, old_logp, input_ids, actions, adv)
                first_step = max([first_step] + [abs(float(v.detach())) for v in losses.values()])
                out[f"grad_{which}"].append(_grad_norm(losses[which], params))
                optimizer = torch.optim.Adam(params, lr=adam_lr)
                optimizer.zero_grad()
                losses[which].backward()
                optimizer.step()
                with torch.no_grad():
                    after = _both_losses(cfg, policy, old_logp, input_ids, actions, adv)
                out[f"loss_{which}"].append(float(after[which]))
            out["loss_first_step"].append(first_step)
            out["demo_over_mean"].append(out["loss_demo"][-1] / out["loss_mean"][-1])
    return out


def optimizer_update_vs_prompts(num_prompts=(1, 2, 4, 8, 16), group_size: int = 4,
                                kind: str = "independent", steps: int = 3,
                                adam_lr: float = 1e-3, sgd_lr: float = 0.05,
                                seed: int = 0) -> dict:
    """Size of the parameter update ||theta_after - theta_before|| after ``steps`` inner
    steps on one batch, with the demo's loss against the mean over groups, for Adam and
    SGD, for each number of prompts P. The two losses differ by the factor P exactly,
    so the ratio shows how each optimizer reacts to the scale: SGD moves about P times
    further, Adam (which divides by the running gradient magnitude) the same distance.
    Returns lists over P: ``adam_demo``, ``adam_mean``, ``sgd_demo``, ``sgd_mean``,
    ``adam_ratio``, ``sgd_ratio`` (demo / mean).
    """
    cfg = small_config(group_size)
    out = {k: [] for k in ("num_prompts", "adam_demo", "adam_mean", "sgd_demo", "sgd_mean",
                           "adam_ratio", "sgd_ratio")}
    with one_torch_thread():
        for num in num_prompts:
            input_ids, actions, adv = _group_batch(cfg, num, seed, kind)  # adv (B,)
            out["num_prompts"].append(num)
            for opt_name in ("adam", "sgd"):
                for which in ("demo", "mean"):
                    policy, old_logp = _fresh_policy(cfg, seed, input_ids, actions)
                    params = list(policy.parameters())
                    start = [p.detach().clone() for p in params]
                    optimizer = (torch.optim.Adam(params, lr=adam_lr) if opt_name == "adam"
                                 else torch.optim.SGD(params, lr=sgd_lr))
                    for _ in range(steps):
                        losses = _both_losses(cfg, policy, old_logp, input_ids, actions, adv)
                        optimizer.zero_grad()
                        losses[which].backward()
                        optimizer.step()
                    moved = math.sqrt(sum(float(((p.detach() - s).double() ** 2).sum())
                                          for p, s in zip(params, start)))
                    out[f"{opt_name}_{which}"].append(moved)
            out["adam_ratio"].append(out["adam_demo"][-1] / out["adam_mean"][-1])
            out["sgd_ratio"].append(out["sgd_demo"][-1] / out["sgd_mean"][-1])
    return out


# ---------------------------------------------------------------------------------------
# data of the two panels (and their static figures)
# ---------------------------------------------------------------------------------------
P_GRID = [i / 100 for i in range(101)]  # closed-form curves
P_SAMPLED = [i / 20 for i in range(21)]  # sampled dots (one batch = one group per p)


@lru_cache(maxsize=64)
def _closed_curves(group_size: int, eps: float) -> dict:
    """Closed-form E[sum |A|] on P_GRID for every scale, and the no-signal share."""
    expected = {scale: abs_advantage_curve(P_GRID, group_size, scale, eps).tolist()
                for scale in ("group", "none", "batch")}
    middle = P_GRID.index(0.5)
    relative = {scale: [v / values[middle] for v in values]
                for scale, values in expected.items()}
    no_signal = [share_all_equal(p, group_size) for p in P_GRID]
    return {"expected": expected, "relative": relative, "no_signal": no_signal}


@lru_cache(maxsize=64)
def _sampled_dots(group_size: int, scale: str, eps: float, num_batches: int) -> tuple:
    """Sampled E[sum |A|] at P_SAMPLED through rlviz.group_advantages (cached)."""
    result = sampled_abs_advantage(P_SAMPLED, group_size, scale, eps,
                                   num_batches=num_batches, seed=0)
    return tuple(P_SAMPLED), tuple(result["mean"].tolist())


def std_bias_data(group_size: int, p: float, eps: float, scale: str,
                  sampled_scales=None, num_batches: int = 200) -> dict:
    """The data of ``rlviz.plots.groups.plot_abs_advantage`` (panel and static figure):
    closed-form curves on P_GRID for every scale (``abs_advantage_curve``), the no-signal
    share, and sampled dots at P_SAMPLED for ``sampled_scales`` (default: ``scale``),
    each from ``num_batches`` batches. Both parts are cached."""
    closed = _closed_curves(group_size, float(eps))
    scales = (scale,) if sampled_scales is None else tuple(sampled_scales)
    sampled = {name: _sampled_dots(group_size, name, float(eps), num_batches)
               for name in scales}
    return {"p_grid": P_GRID, "p": p, "scale": scale, "group_size": group_size,
            "sampled": sampled, **closed}


def length_bias_data(lengths, correct, mode: str, scale: str, max_len: int = 32,
                     labels=None) -> dict:
    """Weights of one group under all four modes (autograd through ``rlviz.aggregate``).
    ``labels``: names of the responses (default "resp. 1", ...)."""
    rewards = [1.0 if c else 0.0 for c in correct]
    per_token, totals = {}, {}
    weights = None
    for name in AGG_MODES:
        result = token_weights(lengths, rewards, name, max_len, scale)
        per_token[name] = result["per_token"].tolist()
        totals[name] = result["totals"].tolist()
        if name == mode:
            weights = result["weights"].numpy()
    if labels is None:
        labels = [f"resp. {i + 1}" for i in range(len(lengths))]
    return {"mode": mode, "weights": weights, "labels": labels, "per_token": per_token,
            "totals": totals}


# ---------------------------------------------------------------------------------------
# section 5: each setting and the option that selects it in TRL and verl
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LibrarySetting:
    """One of ``rlviz``'s advantage scales or aggregation modes, and the library options that
    select it. ``trl``: (``GRPOConfig`` field, the values that select it) or None if TRL has
    no such option; ``verl``: (config key, value) or None. ``*_default``: the option is the
    library's default. ``paper``: where the setting comes from."""

    kind: str  # "advantages" (a scale of group_advantages) or "aggregation" (a mode)
    value: str  # the rlviz name: an entry of ADV_SCALES or AGG_MODES
    what: str
    trl: tuple[str, tuple[str, ...]] | None
    verl: tuple[str, str] | None
    paper: str
    trl_default: bool = False
    verl_default: bool = False
    trl_note: str = ""


LIBRARY_SETTINGS = (
    LibrarySetting("advantages", "group", "divide by the group std",
                   ("scale_rewards", ("group",)), ("algorithm.norm_adv_by_std_in_grpo", "True"),
                   "DeepSeekMath, arXiv 2402.03300", trl_default=True, verl_default=True),
    LibrarySetting("advantages", "batch", "divide by the batch std",
                   ("scale_rewards", ("batch",)), None,
                   "Tricks or Traps? (Lite PPO), arXiv 2508.08221"),
    LibrarySetting("advantages", "none", "no std",
                   ("scale_rewards", ("none",)), ("algorithm.norm_adv_by_std_in_grpo", "False"),
                   "Dr. GRPO, arXiv 2503.20783"),
    LibrarySetting("aggregation", "seq-mean-token-mean", "mean over each response, then over "
                   "responses", ("loss_type", ("grpo",)),
                   ("loss_agg_mode", "seq-mean-token-mean"), "DeepSeekMath"),
    LibrarySetting("aggregation", "token-mean", "mean over all tokens",
                   ("loss_type", ("bnpo", "dapo")), ("loss_agg_mode", "token-mean"),
                   "DAPO, arXiv 2503.14476", verl_default=True,
                   trl_note="bnpo: local batch, dapo: global batch"),
    LibrarySetting("aggregation", "seq-mean-token-sum", "sum over each response, mean over "
                   "responses", None, ("loss_agg_mode", "seq-mean-token-sum"), "–"),
    LibrarySetting("aggregation", "seq-mean-token-sum-norm", "sum over all tokens / (B L_max)",
                   ("loss_type", ("dr_grpo",)), ("loss_agg_mode", "seq-mean-token-sum-norm"),
                   "Dr. GRPO", trl_note="L_max = max_completion_length"),
)

def _option_text(key: str, values, default: bool, note: str = "",
                 quote: bool = True) -> tuple[str, str]:
    """(``key="value"`` or ``key="a" / "b"``, a note: "default" and/or ``note``)."""
    shown = " / ".join(f'"{v}"' if quote else str(v) for v in values)
    return f"{key}={shown}", "; ".join(x for x in ("default" if default else "", note) if x)


def settings_table() -> list[dict]:
    """One row per advantage scale (``ADV_SCALES``) and aggregation mode (``AGG_MODES``):
    the ``rlviz`` call, the TRL and verl options that select it, the paper, and the
    algorithms of ``LOSS_FN_REGISTRY`` that use it (not the demo's two, whose batch
    centring and sum over prompts are neither).

    Checked against the registry's library recipes (``spec.trl`` / ``spec.verl``): the
    TRL / verl settings of every algorithm that uses the setting must not name another
    value for the same option (a ``ValueError`` says which algorithm disagrees)."""
    by_name = {(s.kind, s.value): s for s in LIBRARY_SETTINGS}
    wanted = [("advantages", v) for v in ADV_SCALES] + [("aggregation", v) for v in AGG_MODES]
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise ValueError(f"LIBRARY_SETTINGS has no entry for {missing}")
    algorithms = []  # (spec, its advantage scale, its aggregation mode)
    for spec in LOSS_FN_REGISTRY.values():
        if spec.advantage == "batch-centred":  # the demo's: batch centring, sum over prompts
            continue
        hp = spec_defaults(spec)
        scale = hp.adv_scale if spec.advantage == "group" else None  # GAE, RLOO: no scale
        algorithms.append((spec, scale, hp.loss_agg_mode))
    rows = []
    for kind, value in wanted:
        setting = by_name[(kind, value)]
        users = [spec for spec, scale, mode in algorithms
                 if (scale if kind == "advantages" else mode) == value]
        for spec in users:
            for library, option in (("trl", setting.trl), ("verl", setting.verl)):
                recipe = getattr(spec, library)
                if option is None or recipe is None:
                    continue
                key = option[0].split(".")[-1]
                allowed = option[1] if isinstance(option[1], tuple) else (option[1],)
                found = {k.split(".")[-1]: v for k, v in recipe.settings.items()}.get(key)
                if library == "trl" and key == "loss_type":  # e.g. "cispo" aggregates as "dapo"
                    found = TRL_AGGREGATES_AS.get(found, found)
                if found is not None and str(found) not in allowed:
                    raise ValueError(f"algorithm {spec.name!r} sets {library} {key}="
                                     f"{found!r}, but {value!r} needs one of {allowed}")
        if kind == "advantages":
            call = f'group_advantages(r, G, "{value}")'
        else:
            extra = ", max_len" if value == "seq-mean-token-sum-norm" else ""
            call = f'aggregate(l, m, "{value}"{extra})'
        trl = (("", "") if setting.trl is None else
               _option_text(setting.trl[0], setting.trl[1], setting.trl_default,
                            setting.trl_note))
        verl = (("", "") if setting.verl is None else
                _option_text(setting.verl[0], (setting.verl[1],), setting.verl_default,
                             quote=False))
        rows.append({"setting": value, "what": setting.what, "rlviz": call,
                     "trl": trl[0], "trl_note": trl[1], "verl": verl[0], "verl_note": verl[1],
                     "paper": setting.paper, "algorithms": [spec.name for spec in users]})
    return rows


def settings_table_markdown() -> str:
    """``settings_table()`` as a GitHub markdown table."""

    def code(text, note=""):
        if not text:
            return "–"
        return f"`{text}`" + (f" ({note})" if note else "")

    lines = ["| setting | `rlviz` | TRL `GRPOConfig` | verl | paper | rlviz algorithms |",
             "|---|---|---|---|---|---|"]
    for row in settings_table():
        cells = [f"**{row['setting']}**: {row['what']}", code(row["rlviz"]),
                 code(row["trl"], row["trl_note"]), code(row["verl"], row["verl_note"]),
                 row["paper"], ", ".join(f"`{a}`" for a in row["algorithms"]) or "–"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def algorithms_table_markdown(algorithms, columns=("algo", "advantages", "aggregation",
                                                   "paper", "trl", "verl")) -> str:
    """The rows of ``rlviz.loss_table_markdown(columns)`` for the given ``algorithms``."""
    unknown = [a for a in algorithms if a not in LOSS_FN_REGISTRY]
    if unknown:
        raise ValueError(f"unknown algorithms {unknown}; valid: {list(LOSS_FN_REGISTRY)}")
    header, rule, *body = loss_table_markdown(tuple(columns)).split("\n")
    if "algo" not in columns:
        raise ValueError(f"columns must include 'algo', got {columns}")
    position = list(columns).index("algo")
    keep = [line for line in body
            if line.strip("| ").split(" | ")[position].strip("`") in algorithms]
    return "\n".join([header, rule, *keep])
