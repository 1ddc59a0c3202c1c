"""Notebook 07: where rho != 1 comes from, measured on the toy policy, and what the
corrections do.

* ``measure_rho_sources``: the four sources of rho != 1 on one rollout of a briefly
  trained ``CausalPolicy`` (task "reverse", GRPO group advantages):

  ==============  ===================================================================
  minibatches     M Adam steps per rollout, one pass (verl train_batch_size /
                  ppo_mini_batch_size; TRL steps_per_generation /
                  gradient_accumulation_steps): minibatch m sees a policy m - 1 steps on
  epochs          E passes over the whole rollout, one Adam step each (TRL
                  num_iterations, verl ppo_epochs; M = 1)
  staleness       the rollout was sampled k Adam steps ago (an asynchronous pipeline);
                  rho is pi_current / pi_sampler (the sampler's log-probs as pi_old): what
                  PPO sees only without a recompute (verl's bypass mode)
  engine          same weights, the engine runs in bf16 and samples top-p; rho here is
                  pi_old / pi_rollout (the importance weight of TIS / MIS), what PPO's ratio
                  starts from in verl's bypass mode
  ==============  ===================================================================

  For every setting: a histogram of log rho over the tokens the loss sees, and the share
  of tokens clipped (eps 0.2, the advantage's sign decides which side), with A < 0, dual-clipped
  (A < 0 and rho > 3), and outside [1/2, 2] per token and per sequence (what MIS with
  C = 2 drops). The grid takes ~10 s; ``rho_sources_grid()`` reads the committed cache
  ``data/off_policy/rho_sources.json`` (provenance inside), ``tests/test_nb07_off_policy.py``
  recomputes one source and compares.
* ``kl_gradients``: the expected gradient of each KL estimator when the tokens come from
  pi_old, by exact enumeration of a small vocabulary in float64.
* ``gspo_grpo_gradients``: GSPO's and GRPO's (seq-mean-token-mean) gradients, on- and
  off-policy.
* ``LEARNING``: the multi-seed learning experiment (mismatched engine, stale rollouts;
  no correction / TIS / MIS), run by ``rlviz.experiments.runner`` into
  ``data/experiments/off_policy.jsonl`` (``make experiments``).
"""

from __future__ import annotations

import copy
import json
import math
import platform
from pathlib import Path

import torch

from ..losses import aggregate, clipped_surrogate, kl_estimate
from ..losses.rollout_correction import k3_plus, k3_ratio_weighted
from ..rollout import collect_rollout
from ..rollout_engine import RolloutEngine, recompute_old_logp
from ..tasks import get_task
from ..trainer import (
    TWO_LAYER_SETTINGS,
    TrainConfig,
    _cpu_settings,
    build_policy,
    compute_advantages,
    frozen_copy,
    rollout_and_update,
    update_on_minibatch,
)

# per_seed_final and difference_ci summarise the learning experiment (notebook 07 calls
# them as op.<name>); they live with the other summaries over seeds
from .dynamics import per_seed_final  # noqa: F401
from .kl import exact_kl
from .runner import Experiment
from .stats import difference_ci  # noqa: F401

F64 = torch.float64
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "off_policy"
RHO_CACHE = DATA_DIR / "rho_sources.json"

EPS = 0.2  # PPO's clip range used for the clip fraction
DUAL_CLIP = 3.0  # verl clip_ratio_c default (verl 0.9.1 workers/config/actor.py: clip_ratio_c = 3.0)
CAP = 2.0  # C of TIS / MIS (verl 0.9.1 rollout_correction.yaml: rollout_is_threshold: 2.0)

# the knob of each source: (label, values); six settings each, for the panel's slider
SOURCES = {
    "minibatches": ("mini-batches per rollout", (1, 2, 4, 8, 16, 32)),
    "epochs": ("epochs over the rollout", (1, 2, 3, 4, 6, 8)),
    "staleness": ("rollout is k Adam steps old", (0, 1, 2, 4, 8, 16)),
    "engine": ("bf16 engine, sampler top-p", (1.0, 0.99, 0.95, 0.9, 0.8, 0.7)),
}
HIST_RANGE = 0.9  # the log-rho histograms cover [-0.9, 0.9] (clamped at the ends)
HIST_BINS = 60


# ---------------------------------------------------------------------------------------
# The setting: a briefly trained policy, its optimizer, one rollout
# ---------------------------------------------------------------------------------------
def base_config(seed: int = 0) -> TrainConfig:
    """The toy run every source starts from: GRPO on "reverse", 256 samples (32 prompts x
    8), the two-layer model of ``TWO_LAYER_SETTINGS`` (lr 1e-3), one epoch of one
    minibatch."""
    return TrainConfig(**{**TWO_LAYER_SETTINGS, "epochs": 1}, algo="grpo_paper",
                       task="reverse", samples_per_step=256, minibatches=1, seed=seed,
                       eval_every=10_000, steps=10)


def warm_start(cfg: TrainConfig):
    """``cfg.steps`` ordinary training steps (so Adam's moments are warm and the policy is
    no longer uniform): returns ``(policy, optimizer, reference, task)``."""
    task = get_task(cfg.task)
    policy = build_policy(cfg, task)
    reference = frozen_copy(policy)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.steps):
        rollout_and_update(cfg, policy, reference, optimizer, task, generator)
    return policy, optimizer, reference, task


def _fork(policy, optimizer):
    """Independent copies of a policy and its Adam state."""
    new_policy = copy.deepcopy(policy)
    new_optimizer = torch.optim.Adam(new_policy.parameters(), lr=optimizer.param_groups[0]["lr"])
    new_optimizer.load_state_dict(optimizer.state_dict())
    return new_policy, new_optimizer


def _sample(cfg, policy, reference, task, generator):
    group = cfg.group_size()
    policy.eval()
    batch = collect_rollout(policy, reference, task, cfg.samples_per_step // group, group,
                            cfg.temperature, generator)
    advantages, _ = compute_advantages(cfg, batch)
    return batch, advantages


@torch.no_grad()
def _log_rho(policy, batch) -> torch.Tensor:
    """log pi_theta - log pi_old on the batch's tokens, (B, R) (0 off the mask)."""
    policy.eval()
    logp = recompute_old_logp(policy, batch)  # (B, R)
    return (logp - batch.old_logp) * batch.response_mask


def _update(cfg, policy, optimizer, batch, advantages):
    policy.train()
    update_on_minibatch(cfg, policy, optimizer, batch.trimmed(keep_prompt=policy.padding_counts),
                        advantages, None)


class _Tally:
    """Pools the tokens the loss sees over the updates of one setting."""

    def __init__(self):
        self.log_rho, self.adv, self.seq_log_w = [], [], []

    def add(self, log_rho, advantages, mask):
        on = mask > 0  # (b, R)
        adv = advantages[:, None].expand_as(log_rho)  # (b, R)
        self.log_rho.append(log_rho[on])
        self.adv.append(adv[on])
        self.seq_log_w.append((log_rho * mask).sum(dim=1))  # (b,) log of the product

    def summary(self) -> dict:
        log_rho = torch.cat(self.log_rho).double()  # (N,)
        adv = torch.cat(self.adv).double()
        seq = torch.cat(self.seq_log_w).double()
        rho = log_rho.exp()
        clipped = ((adv > 0) & (rho > 1 + EPS)) | ((adv < 0) & (rho < 1 - EPS))
        outside = (log_rho.abs() > math.log(CAP))
        width = HIST_RANGE
        counts = torch.histc(log_rho.clamp(-width, width), HIST_BINS, -width, width)
        quantiles = torch.quantile(log_rho, torch.tensor([0.01, 0.5, 0.99], dtype=F64))
        return {
            "tokens": int(log_rho.numel()),
            "hist": [int(c) for c in counts.tolist()],
            "log_rho_mean": float(log_rho.mean()),
            "log_rho_std": float(log_rho.std()) if log_rho.numel() > 1 else 0.0,
            "log_rho_q01": float(quantiles[0]),
            "log_rho_q50": float(quantiles[1]),
            "log_rho_q99": float(quantiles[2]),
            "max_abs_log_rho": float(log_rho.abs().max()),
            "clipfrac": float(clipped.double().mean()),
            "adv_negative": float((adv < 0).double().mean()),  # PPO clips these when rho < 1 - eps
            "dual_frac": float(((adv < 0) & (rho > DUAL_CLIP)).double().mean()),
            "outside_token": float(outside.double().mean()),
            "outside_sequence": float((seq.abs() > math.log(CAP)).double().mean()),
            "approx_kl": float((rho - 1 - log_rho).mean()),
        }


# ---------------------------------------------------------------------------------------
# The four sources
# ---------------------------------------------------------------------------------------
def _source_minibatches(cfg, policy, optimizer, reference, task, batch, adv, seed):
    results = []
    for m in SOURCES["minibatches"][1]:
        pol, opt = _fork(policy, optimizer)
        tally = _Tally()
        rows = torch.randperm(len(batch), generator=torch.Generator().manual_seed(seed))
        for chunk in rows.chunk(m):
            mini = batch.select(chunk)
            tally.add(_log_rho(pol, mini), adv[chunk], mini.response_mask)
            _update(cfg, pol, opt, mini, adv[chunk])
        results.append(tally.summary())
    return results


def _source_epochs(cfg, policy, optimizer, reference, task, batch, adv, seed):
    pol, opt = _fork(policy, optimizer)
    tally, results = _Tally(), []
    for epoch in range(max(SOURCES["epochs"][1])):
        tally.add(_log_rho(pol, batch), adv, batch.response_mask)
        if epoch + 1 in SOURCES["epochs"][1]:
            results.append(tally.summary())
        _update(cfg, pol, opt, batch, adv)
    return results


def _source_staleness(cfg, policy, optimizer, reference, task, batch, adv, seed):
    pol, opt = _fork(policy, optimizer)
    generator = torch.Generator().manual_seed(seed + 1)
    results = []
    for k in range(max(SOURCES["staleness"][1]) + 1):
        if k in SOURCES["staleness"][1]:
            tally = _Tally()
            tally.add(_log_rho(pol, batch), adv, batch.response_mask)
            results.append(tally.summary())
        fresh, fresh_adv = _sample(cfg, pol, reference, task, generator)
        _update(cfg, pol, opt, fresh, fresh_adv)
    return results


def _source_engine(cfg, policy, optimizer, reference, task, batch, adv, seed):
    results = []
    group = cfg.group_size()
    for top_p in SOURCES["engine"][1]:
        engine = RolloutEngine(policy, "bfloat16", top_p=top_p)
        engine.sync(policy)
        generator = torch.Generator().manual_seed(seed + 2)
        sampled = engine.collect(reference, task, cfg.samples_per_step // group, group,
                                 cfg.temperature, generator)
        sampled_adv, _ = compute_advantages(cfg, sampled)
        log_w = (recompute_old_logp(policy, sampled) - sampled.old_logp) * sampled.response_mask
        tally = _Tally()
        tally.add(log_w, sampled_adv, sampled.response_mask)
        results.append(tally.summary())
    return results


SOURCE_FUNCTIONS = {"minibatches": _source_minibatches, "epochs": _source_epochs,
                    "staleness": _source_staleness, "engine": _source_engine}


def measure_rho_sources(seed: int = 0, sources=tuple(SOURCES)) -> dict:
    """``{source: [summary per knob value]}`` (see the module docstring), deterministic.
    ~10 s of CPU for all four sources."""
    cfg = base_config(seed)
    with _cpu_settings():
        policy, optimizer, reference, task = warm_start(cfg)
        generator = torch.Generator().manual_seed(seed + 1000)
        batch, adv = _sample(cfg, policy, reference, task, generator)
        out = {}
        for source in sources:
            out[source] = SOURCE_FUNCTIONS[source](cfg, policy, optimizer, reference, task,
                                                   batch, adv, seed)
    return out


def provenance() -> dict:
    return {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "code": "rlviz/experiments/off_policy.py",
            "eps": EPS, "dual_clip": DUAL_CLIP, "cap": CAP, "sources": {
                k: {"label": v[0], "values": list(v[1])} for k, v in SOURCES.items()},
            "hist_bins": HIST_BINS, "hist_range": HIST_RANGE}


def write_rho_cache(path: Path = RHO_CACHE, seed: int = 0) -> dict:
    """Recompute the grid and write it with its provenance (``python -m
    rlviz.experiments.off_policy rho``)."""
    data = {"provenance": {**provenance(), "seed": seed,
                           "command": "python -m rlviz.experiments.off_policy rho"},
            "grid": measure_rho_sources(seed)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def rho_sources_grid(path: Path = RHO_CACHE) -> dict:
    """The cached grid: ``{"provenance": ..., "grid": {source: [summary, ...]}}``."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: run python -m rlviz.experiments.off_policy rho")
    return json.loads(Path(path).read_text())


def hist_edges() -> list[float]:
    """The ``HIST_BINS + 1`` bin edges of the log-rho histograms."""
    return [-HIST_RANGE + 2 * HIST_RANGE * i / HIST_BINS for i in range(HIST_BINS + 1)]


# ---------------------------------------------------------------------------------------
# The KL off-policy: exact expected gradients on a small vocabulary
# ---------------------------------------------------------------------------------------
def kl_gradients(theta_logits: torch.Tensor, old_logits: torch.Tensor,
                 ref_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Expected gradients w.r.t. the policy logits (V,) when the tokens x come from
    pi_old, by summing over the vocabulary in float64: sum_x pi_old(x) grad k(x).

    * ``k3``: plain k3 (GRPO's estimator as in DeepSeekMath);
    * ``k3_ratio``: rho * k3 (TRL 1.16.0 ``use_bias_correction_kl``);
    * ``k3_plus``: verl 0.9.1's ``k3+`` (the gradient of k2);
    * ``reverse_kl``: grad KL(pi_theta || pi_ref), the target; ``forward_kl``: grad
      KL(pi_ref || pi_theta).
    """
    old_logp = old_logits.detach().to(F64).log_softmax(-1)[None]  # (1, V)
    ref_logp = ref_logits.detach().to(F64).log_softmax(-1)[None]  # (1, V)
    weights = old_logp.exp()  # (1, V) pi_old(x): the sampling distribution

    def grad_of(per_token) -> torch.Tensor:
        theta = theta_logits.detach().to(F64).clone().requires_grad_(True)
        logp = theta.log_softmax(-1)[None]  # (1, V): every token of the vocabulary
        (grad,) = torch.autograd.grad((weights * per_token(logp)).sum(), theta)
        return grad  # (V,)

    def exact(kl_fn) -> torch.Tensor:
        theta = theta_logits.detach().to(F64).clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(kl_fn(theta.log_softmax(-1)), theta)
        return grad

    return {
        "k3": grad_of(lambda logp: kl_estimate(logp, ref_logp, "k3")),
        "k3_ratio": grad_of(lambda logp: k3_ratio_weighted(logp, old_logp, ref_logp)),
        "k3_plus": grad_of(lambda logp: k3_plus(logp, ref_logp)),
        "reverse_kl": exact(lambda logp: exact_kl(logp, ref_logp[0])),
        "forward_kl": exact(lambda logp: exact_kl(ref_logp[0], logp)),
    }


def kl_gradient_table(vocab_size: int = 8, shifts=(0.0, 0.25, 0.5, 1.0), seed: int = 0):
    """For each shift s (pi_old = pi_theta's logits minus s * a random direction): the
    relative error |g - grad KL(theta || ref)| / |grad KL| of each estimator's expected
    gradient. Rows: dicts with ``shift`` and one error per estimator."""
    generator = torch.Generator().manual_seed(seed)
    theta = torch.randn(vocab_size, generator=generator, dtype=F64)
    ref = torch.randn(vocab_size, generator=generator, dtype=F64)
    direction = torch.randn(vocab_size, generator=generator, dtype=F64)
    rows = []
    for shift in shifts:
        grads = kl_gradients(theta, theta - shift * direction, ref)
        target = grads["reverse_kl"]
        row = {"shift": shift,
               "kl_old_theta": float(exact_kl((theta - shift * direction).log_softmax(-1),
                                              theta.log_softmax(-1)))}
        for name in ("k3", "k3_ratio", "k3_plus"):
            row[name] = float((grads[name] - target).norm() / target.norm())
        row["k3_vs_forward"] = float((grads["k3"] - grads["forward_kl"]).norm()
                                     / grads["forward_kl"].norm())
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# GSPO vs GRPO, on- and off-policy
# ---------------------------------------------------------------------------------------
def gspo_grpo_gradients(shift: float, seed: int = 0, eps: float = 10.0) -> dict:
    """Gradients w.r.t. logp of GRPO (token ratio) and GSPO (sequence ratio), both
    aggregated seq-mean-token-mean, on a batch of 6 responses of 3-7 tokens whose old
    log-probs differ from the current ones by ``shift`` * N(0, 1) per token. ``eps`` = 10
    keeps both away from the clip, so only the ratio differs. Returns both gradients
    (B, T) and their largest absolute difference."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([3, 7, 5, 4, 6, 7])
    batch, width = len(lengths), int(lengths.max())
    mask = (torch.arange(width)[None] < lengths[:, None]).to(F64)  # (B, T)
    logp0 = -torch.rand(batch, width, generator=generator, dtype=F64) * 3  # (B, T)
    old_logp = logp0 - shift * torch.randn(batch, width, generator=generator, dtype=F64)
    advantages = torch.randn(batch, generator=generator, dtype=F64)  # (B,)
    grads = {}
    for level in ("token", "sequence"):
        logp = logp0.clone().requires_grad_(True)
        loss = aggregate(clipped_surrogate(logp, old_logp, advantages, eps_low=0.99,
                                           eps_high=eps, level=level, mask=mask),
                         mask, "seq-mean-token-mean")
        (grads[level],) = torch.autograd.grad(loss, logp)
    return {"grpo": grads["token"], "gspo": grads["sequence"], "mask": mask,
            "max_diff": float((grads["token"] - grads["sequence"]).abs().max()),
            "scale": float(grads["token"].abs().max())}


# ---------------------------------------------------------------------------------------
# The learning experiment
# ---------------------------------------------------------------------------------------
LEARNING_BASE = dict(algo="grpo_paper", task="copy", steps=40, samples_per_step=128,
                     epochs=1, minibatches=4, lr=5e-3, hidden_size=32, n_layers=1,
                     positions="real", eval_every=10_000)
ENGINE = dict(rollout_dtype="bfloat16", rollout_top_p=0.8, old_logp_source="recompute")
STALE = dict(staleness=4, old_logp_source="recompute")  # 4 steps x 4 minibatches = 16 Adam steps
LEARNING_CONFIGS = {
    "matched": {},
    "engine, no correction": ENGINE,
    "engine, TIS": {**ENGINE, "rollout_correction": "tis_token"},
    "engine, MIS": {**ENGINE, "rollout_correction": "mis_token"},
    "stale, no correction": STALE,
    "stale, TIS": {**STALE, "rollout_correction": "tis_token"},
    "stale, MIS": {**STALE, "rollout_correction": "mis_token"},
}
LEARNING = Experiment(
    name="off_policy",
    description=("notebook 07: grpo_paper on copy with a mismatched rollout engine (bf16, "
                 "top-p 0.8) or 4-step-stale rollouts; no correction / token TIS / token "
                 "MIS (C = 2) against the matched trainer"),
    configs=LEARNING_CONFIGS,
    seeds=tuple(range(10)),
    base=LEARNING_BASE,
    metrics=("reward", "greedy_reward", "clipfrac", "kl_ref", "rollout_kl", "is_weight_mean",
             "seconds"),
)


if __name__ == "__main__":  # python -m rlviz.experiments.off_policy rho
    import sys

    if sys.argv[1:] != ["rho"]:
        raise SystemExit("usage: python -m rlviz.experiments.off_policy rho")
    write_rho_cache()
    print(f"wrote {RHO_CACHE}")
