"""One training loop for every algorithm of ``LOSS_FN_REGISTRY`` on a toy task.

    cfg = TrainConfig(algo="ppo_gae", task="reverse", steps=60)
    result = train(cfg)            # a progress bar, then
    result.metrics[-1]["reward"]   # one dict of metrics per step

Each step: sample a batch (``rlviz.rollout``), compute the advantages the algorithm asks
for (``rlviz.losses.algo_advantages``: group-relative, GAE with the KL in the reward, or
the demo's batch-centred ones), then ``epochs`` passes over the batch in ``minibatches``
minibatches, each an Adam step on ``policy_loss_wrapper(cfg.algo, ...)`` with gradient
clipping. Changing ``cfg.algo`` alone switches the algorithm: its loss, its advantages,
where its KL goes, its critic, and its default hyper-parameters (``cfg.hparams()``).
"""

from __future__ import annotations

import copy
import csv
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from .algorithms import HParams, algo_advantages, get_spec, policy_loss_wrapper, resolve_hparams
from .causal_policy import POSITIONS, CausalPolicy
from .config import Config
from .losses import kl_estimate
from .losses.dapo import dynamic_sampling, soft_overlong_penalty, truncated, zero_std_groups
from .losses.rollout_correction import (
    CORRECTION_MODES,
    OLD_LOGP_SOURCES,
    is_correction_weights,
    old_logp_for_ratio,
    weighted_advantages,
)
from .rollout import Rollout, collect_rollout, evaluate, generate
from .rollout_engine import ENGINE_DTYPES, RolloutEngine, recompute_old_logp
from .tasks import EOS, VOCAB_SIZE, Task, get_task
from .threads import one_torch_thread

# Where the toy task needs another default than the algorithm's own, used only while the
# Config field is None (a value set by the user still wins). "ppo_gae": TRL's kl_coef 0.05
# with the KL in the reward keeps the policy close to the random initial network: the
# KL-regularised optimum is pi* ~ pi_ref * exp(r / beta), and with rewards in [0, 1] spread
# over ~5 tokens beta = 0.05 held the reward near 0.4 after 50 steps (measured with 4
# epochs per batch), where 0.01 and 0.02 reached 0.9.
TOY_TASK_DEFAULTS: dict[str, dict] = {"ppo_gae": {"beta": 0.01}}

# The trainer's defaults until December 2026. The controlled experiments of notebook 09 and
# notebook 07's measurements of rho keep them; on "copy" the one-layer defaults reached 0.9
# within 150 steps in 0 of 4 seeds (benchmarks/bench_learning.py).
TWO_LAYER_SETTINGS = {"n_layers": 2, "positions": "real", "epochs": 2, "lr": 1e-3}


@dataclass
class TrainConfig(Config):
    """``Config`` plus the knobs of the toy training loop.

    The loss hyper-parameters still come from ``cfg.hparams()`` (the algorithm's defaults,
    the toy task's adjustments in ``TOY_TASK_DEFAULTS`` (``"ppo_gae"``: beta 0.01), then
    the ``Config`` overrides), so ``cfg.algo`` alone switches the algorithm. Six
    inherited fields get defaults that suit the toy task: ``algo="grpo_paper"``,
    ``lr=3e-3``, ``group_num=8`` (G for the group algorithms), ``hidden_size=64`` (the
    model width), ``vocab_size=14`` (the tasks' vocabulary) and ``device="cpu"``.
    ``n_layers``, ``n_heads`` and ``positions`` shape the ``CausalPolicy`` (``positions=
    "column"``: a position is the column of the padded block, see ``rlviz.causal_policy``).
    The defaults (one layer, column positions, one epoch, lr 3e-3) learn "reverse" in
    about 35 steps of ~0.15 s; ``TWO_LAYER_SETTINGS`` holds the earlier defaults (two
    layers, real-token positions, two epochs, lr 1e-3), which the controlled experiments
    keep (on "copy" the one-layer defaults reached 0.9 in 0 of 4 seeds).
    ``ent_coef`` (0.01) weights an entropy bonus for every algorithm, not only
    ``"ppo_gae"`` (the prototype of this trainer saw GRPO plateau near 0.85 on "reverse"
    without it); set 0 for the papers' exact losses. ``vf_coef`` weights the value loss of ``"ppo_gae"``. The demo's
    ``input_len`` and ``seq_len`` are not used (the task fixes the lengths).

    Batch layout: each step samples ``samples_per_step`` responses: ``group_num``
    responses to each of ``samples_per_step / group_num`` prompts for the group
    algorithms (and the demo's), one response to each of ``samples_per_step`` prompts
    for algorithms with a critic (PPO needs no group: its baseline is the value head).

    Off-policy (notebook 07; the defaults change nothing): ``rollout_dtype``,
    ``rollout_top_p``, ``rollout_top_k`` and ``staleness`` make a ``RolloutEngine`` sample
    instead of the policy (bf16 weights, a truncated sampler, weights ``staleness`` steps
    old); ``old_logp_source="recompute"`` scores the batch with the trainer for pi_old
    (verl's decoupled mode; ``"rollout"`` keeps the engine's log-probs, verl's bypass);
    ``rollout_correction`` (``"tis_token"``, ``"mis_sequence"``, ...) with cap
    ``rollout_cap`` weighs each token's policy loss by the detached pi_old / pi_rollout.

    DAPO (arXiv 2503.14476; the defaults change nothing): ``overlong_filter``,
    ``overlong_buffer`` (soft overlong punishment), and ``dynamic_sampling``: groups
    whose G rewards are all equal are dropped and more are sampled, at most
    ``max_gen_batches`` rounds of ``samples_per_step`` responses per step
    (``rlviz.losses.dapo.dynamic_sampling``; verl 0.9.1 ``algorithm.filter_groups.enable``
    and ``max_num_gen_batches``, whose default 0 means no cap: here a cap is required).
    """

    algo: str = "grpo_paper"
    lr: float = 3e-3
    group_num: int = 8
    hidden_size: int = 64
    vocab_size: int = VOCAB_SIZE
    device: str = "cpu"
    # ---- the toy training loop ----
    task: str = "reverse"  # a key of rlviz.tasks.TASKS
    steps: int = 80  # rollout + update rounds
    samples_per_step: int = 256  # responses sampled per step
    epochs: int = 1  # passes over each batch
    minibatches: int = 4  # Adam steps per pass
    max_grad_norm: float = 1.0  # gradient clipping (total norm)
    temperature: float = 1.0  # sampling and scoring temperature
    n_layers: int = 1
    n_heads: int = 4
    positions: str = "column"  # position = column of the padded block (CausalPolicy, POSITIONS)
    seed: int = 0
    eval_every: int = 10  # greedy reward on fresh prompts every k steps (and the last)
    eval_prompts: int = 128
    stop_reward: float | None = None  # stop once the mean reward of `window` steps reaches it
    window: int = 5
    # ---- off-policy: the rollout engine and its correction (notebook 07) ----
    rollout_dtype: str = "float32"  # "bfloat16": the engine samples with bf16 weights
    rollout_top_p: float = 1.0  # < 1: the engine samples from a nucleus-truncated softmax
    rollout_top_k: int = 0  # > 0: ... from the k most likely tokens
    staleness: int = 0  # the engine's weights are this many training steps old
    old_logp_source: str = "rollout"  # "rollout" (verl bypass) or "recompute" (decoupled)
    rollout_correction: str = "none"  # rlviz.losses.rollout_correction.CORRECTION_MODES
    rollout_cap: float = 2.0  # C of TIS / MIS
    # ---- DAPO's recipe (arXiv 2503.14476), off by default ----
    overlong_filter: bool = False  # truncated responses (no EOS) leave the loss
    overlong_buffer: int = 0  # L_cache of the soft overlong punishment (0: off)
    dynamic_sampling: bool = False  # drop groups with all-equal rewards, sample again
    max_gen_batches: int = 5  # cap on the generation rounds of one step (dynamic sampling)

    def off_policy_engine(self) -> bool:
        """True when sampling goes through a ``RolloutEngine`` (any off-policy knob set)."""
        return (self.rollout_dtype != "float32" or self.rollout_top_p != 1.0
                or self.rollout_top_k != 0 or self.staleness != 0
                or self.old_logp_source != "rollout" or self.rollout_correction != "none")

    def _validate_off_policy(self) -> None:
        """The off-policy fields: ``ValueError`` naming the field when a value cannot work."""
        if self.rollout_dtype not in ENGINE_DTYPES:
            raise ValueError(f"rollout_dtype must be one of {sorted(ENGINE_DTYPES)}, "
                             f"got {self.rollout_dtype!r}")
        if not 0 < self.rollout_top_p <= 1:
            raise ValueError(f"rollout_top_p must be in (0, 1], got {self.rollout_top_p!r}")
        for name in ("rollout_top_k", "staleness"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.old_logp_source not in OLD_LOGP_SOURCES:
            raise ValueError(f"old_logp_source must be one of {OLD_LOGP_SOURCES}, "
                             f"got {self.old_logp_source!r}")
        if self.rollout_correction not in CORRECTION_MODES:
            raise ValueError(f"rollout_correction must be one of {CORRECTION_MODES}, "
                             f"got {self.rollout_correction!r}")
        if self.rollout_correction != "none" and self.old_logp_source != "recompute":
            raise ValueError(f"rollout_correction={self.rollout_correction!r} needs "
                             "old_logp_source='recompute' (the weights are pi_old / pi_rollout)")
        if self.rollout_correction != "none" and self.algo in ("ppo", "grpo"):
            raise ValueError(f"rollout_correction={self.rollout_correction!r} needs a family "
                             f"algorithm: the demo's {self.algo!r} loss takes one advantage "
                             "per response, the correction weighs every token")
        if not self.rollout_cap > 1:
            raise ValueError(f"rollout_cap must be > 1, got {self.rollout_cap!r}")

    def _validate_dynamic_sampling(self) -> None:
        if not isinstance(self.dynamic_sampling, bool):
            raise ValueError(f"dynamic_sampling must be True or False, "
                             f"got {self.dynamic_sampling!r}")
        if isinstance(self.max_gen_batches, bool) or not isinstance(self.max_gen_batches, int) \
                or self.max_gen_batches < 1:
            raise ValueError(f"max_gen_batches must be a positive integer, "
                             f"got {self.max_gen_batches!r}")
        if self.dynamic_sampling and self.group_size() == 1:
            raise ValueError(f"dynamic_sampling needs groups of G > 1 responses per prompt; "
                             f"algo={self.algo!r} samples one response per prompt (its "
                             "baseline is a critic), so no group can be filtered")

    def loss_config(self) -> Config:
        """A copy whose unset loss fields carry the toy task's adjustments
        (``TOY_TASK_DEFAULTS``) and ``max_len`` = the task's generation budget (the
        constant normaliser of "seq-mean-token-sum-norm": minibatches are trimmed to their
        longest response, so the padded width would vary); this is what the loss and the
        advantages are computed with."""
        adjust = {name: value for name, value in TOY_TASK_DEFAULTS.get(self.algo, {}).items()
                  if getattr(self, name) is None}
        if self.max_len is None:
            adjust["max_len"] = get_task(self.task).max_new_tokens
        return replace(self, **adjust)

    def hparams(self) -> HParams:
        """The loss hyper-parameters training runs with: the algorithm's defaults, the toy
        task's adjustments (``TOY_TASK_DEFAULTS``), then the overrides set on ``self``;
        ``ent_coef`` is ``self.ent_coef`` for every algorithm (the trainer passes it to
        ``policy_loss_wrapper``; the demo's losses have no entropy term and ignore it)."""
        return replace(resolve_hparams(self.loss_config()), ent_coef=self.ent_coef)

    def group_size(self) -> int:
        """Responses per prompt: 1 for algorithms with a critic, ``group_num`` otherwise."""
        return 1 if get_spec(self.algo).needs_critic else self.group_num

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when a value cannot work."""
        get_spec(self.algo)
        get_task(self.task)
        for name in ("steps", "samples_per_step", "epochs", "minibatches", "group_num",
                     "hidden_size", "n_layers", "n_heads", "eval_every", "eval_prompts",
                     "window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.vocab_size != VOCAB_SIZE:
            raise ValueError(f"vocab_size must be {VOCAB_SIZE} (the tasks' vocabulary), "
                             f"got {self.vocab_size}")
        if self.device != "cpu":
            raise ValueError(f"the toy trainer runs on the CPU, got device={self.device!r}")
        for name in ("lr", "temperature", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.hidden_size % self.n_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by "
                             f"n_heads={self.n_heads}")
        group = self.group_size()
        if self.samples_per_step % group:
            raise ValueError(f"samples_per_step={self.samples_per_step} must be a multiple of "
                             f"group_num={group}")
        self._validate_off_policy()
        if isinstance(self.overlong_buffer, bool) or not isinstance(self.overlong_buffer, int) \
                or not 0 <= self.overlong_buffer <= get_task(self.task).max_new_tokens:
            raise ValueError(f"overlong_buffer must be an integer in [0, "
                             f"{get_task(self.task).max_new_tokens}] (the generation budget), "
                             f"got {self.overlong_buffer!r}")
        self._validate_dynamic_sampling()
        if self.samples_per_step // group < self.minibatches:
            raise ValueError(f"samples_per_step / group size = {self.samples_per_step // group} "
                             f"prompts cannot fill minibatches={self.minibatches}")


# the columns of every metrics row, in order (NaN where a metric does not apply that step)
PROMPT_LENGTHS = (3, 4, 5)  # the buckets of the reward_lenN metrics (prompt symbols)
METRIC_NAMES = (
    "step", "reward", "greedy_reward", "response_length",
    *(f"reward_len{n}" for n in PROMPT_LENGTHS), "loss", "policy_loss",
    "policy_loss_first", "clipfrac", "approx_kl", "kl_ref", "entropy", "grad_norm", "value_loss",
    "ratio_dev_first", "rollout_kl", "is_weight_mean", "frac_reward_zero_std", "gen_rounds",
    "samples_generated", "seconds",
)
METRIC_DOCS = {
    "step": "step index, from 0",
    "reward": "mean task reward of the step's sampled batch (the first generation round)",
    "greedy_reward": "mean reward of greedy decoding on fresh prompts (every eval_every steps)",
    "response_length": "mean response length in tokens, EOS included (first round)",
    **{f"reward_len{n}": f"mean task reward of the prompts of {n} symbols (first round; "
                         "NaN when the step has none)" for n in PROMPT_LENGTHS},
    "loss": "the loss minimised (policy + KL + value - entropy terms), mean over updates",
    "policy_loss": "the clipped-surrogate term alone, mean over updates",
    "policy_loss_first": "the clipped-surrogate term on the first minibatch (rho = 1)",
    "clipfrac": "share of tokens on the clipped branch (no gradient), mean over updates",
    "approx_kl": "k3 estimate of KL(old || new), mean over updates",
    "kl_ref": "k3 estimate of KL(policy || reference) on the sampled tokens",
    "entropy": "mean per-token entropy of the policy, mean over updates",
    "grad_norm": "gradient norm before clipping, mean over updates",
    "value_loss": "clipped value loss (algorithms with a critic), mean over updates",
    "ratio_dev_first": "max |rho - 1| on the first minibatch (0 up to rounding)",
    "rollout_kl": "k3 estimate of KL(rollout engine || trainer) on the sampled tokens "
                  "(NaN unless old_logp_source='recompute')",
    "is_weight_mean": "mean TIS / MIS weight over the tokens (NaN without a correction)",
    "frac_reward_zero_std": "share of prompts whose G rewards are all equal (TRL's name), "
                            "in the first generation round (what is trained on without "
                            "dynamic sampling)",
    "gen_rounds": "generation rounds of the step (1 unless dynamic_sampling)",
    "samples_generated": "responses sampled this step (gen_rounds x samples_per_step)",
    "seconds": "wall time since training started",
}


@dataclass
class TrainResult:
    """What ``train`` returns: the metrics (one dict per step), the trained policy, the
    frozen reference (the initial policy), the task and the config."""

    cfg: TrainConfig
    task: Task
    policy: CausalPolicy
    reference: CausalPolicy
    metrics: list = field(default_factory=list)

    def column(self, name: str) -> list[float]:
        """One metric over the steps, e.g. ``result.column("reward")``."""
        if name not in METRIC_NAMES:
            raise ValueError(f"Unknown metric: {name!r}. Known metrics: {', '.join(METRIC_NAMES)}")
        return [row[name] for row in self.metrics]

    def steps_to(self, threshold: float = 0.9, window: int = 5):
        """``(steps, seconds)`` until the mean reward of ``window`` consecutive steps first
        reaches ``threshold`` (counted to the window's last step); ``(None, None)`` if never."""
        return steps_to_threshold(self.metrics, threshold, window)

    def to_csv(self, path) -> None:
        """Write the metrics, one row per step, columns ``METRIC_NAMES``."""
        write_metrics_csv(self.metrics, path)

    def samples(self, num_prompts: int = 5, greedy: bool = False, seed: int = 1,
                policy: CausalPolicy | None = None) -> list[str]:
        """Readable responses of ``policy`` (default: the trained one) to fresh prompts."""
        policy = self.policy if policy is None else policy
        generator = torch.Generator().manual_seed(seed)
        prompts = self.task.sample_prompts(num_prompts, generator)
        ids, mask = self.task.encode_prompts(prompts)
        responses, _, _ = generate(policy, ids, mask, self.task.max_new_tokens,
                                   self.cfg.temperature, generator, greedy=greedy)
        return [self.task.show(p, r) for p, r in zip(prompts, responses)]


def steps_to_threshold(metrics: list, threshold: float = 0.9, window: int = 5):
    """``(steps, seconds)`` until the mean reward over ``window`` consecutive steps first
    reaches ``threshold``: steps counts the steps run (the window's last index + 1)."""
    rewards = [row["reward"] for row in metrics]
    for end in range(window, len(rewards) + 1):
        if sum(rewards[end - window:end]) / window >= threshold:
            return end, metrics[end - 1]["seconds"]
    return None, None


def write_metrics_csv(metrics: list, path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(METRIC_NAMES))
        writer.writeheader()
        for row in metrics:
            writer.writerow({k: row[k] for k in METRIC_NAMES})


def build_policy(cfg: TrainConfig, task: Task) -> CausalPolicy:
    """A fresh ``CausalPolicy`` for ``task``, initialised from ``cfg.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return CausalPolicy(vocab_size=task.vocab_size, d_model=cfg.hidden_size,
                            n_heads=cfg.n_heads, n_layers=cfg.n_layers, positions=cfg.positions,
                            max_positions=task.prompt_width + task.max_new_tokens)


def frozen_copy(policy: CausalPolicy) -> CausalPolicy:
    """The reference model: a copy of ``policy`` that never trains."""
    reference = copy.deepcopy(policy)
    reference.requires_grad_(False)
    return reference.eval()


@contextmanager
def _cpu_settings():
    """One torch thread (``rlviz.threads.one_torch_thread``: this model's matrices are too
    small to split; on a busy 2-core machine two threads made training ~10x slower) and
    denormals flushed to zero (Adam's tiny second moments otherwise slow training ~25x late
    in a run; flushing changes nothing measurable at float32 scale). Both are restored
    afterwards: flushing is a process-wide CPU flag that other code (hypothesis, for one)
    refuses to run under."""
    was_flushing = _flushes_denormals()
    torch.set_flush_denormal(True)
    try:
        with one_torch_thread():
            yield
    finally:
        torch.set_flush_denormal(was_flushing)


def _flushes_denormals() -> bool:
    """Whether the CPU flushes subnormal floats to zero right now (torch has no getter)."""
    tiny = torch.tensor([1e-300], dtype=torch.float64)
    return (tiny * 1e-10).item() == 0.0  # 1e-310 is subnormal in float64


def compute_advantages(cfg: TrainConfig, batch: Rollout):
    """``(advantages, returns)`` the way ``cfg.algo`` computes them (returns: GAE only)."""
    return algo_advantages(
        cfg.hparams(), batch.rewards, batch.response_mask, group_size=batch.group_size,
        values=batch.old_values, logp=batch.old_logp, ref_logp=batch.ref_logp)


def minibatch_rows(num_rows: int, group_size: int, minibatches: int,
                   generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffle whole groups (rows g*G .. g*G+G-1 stay together) and split them into
    ``minibatches`` index tensors. Keeping groups whole means the first minibatch's
    group-relative advantages sum to zero, as on the full batch."""
    groups = torch.randperm(num_rows // group_size, generator=generator)  # (num_groups,)
    rows = (groups[:, None] * group_size + torch.arange(group_size)).reshape(-1)  # (B,)
    return list(rows.chunk(minibatches))


def update_on_minibatch(cfg, policy, optimizer, batch: Rollout, advantages, returns):
    """One Adam step on ``policy_loss_wrapper(cfg.algo, ...)``; returns its metrics."""
    logp, values, logits = policy.response_scores(
        batch.sequences, batch.attention_mask, batch.prompt_width, batch.temperature,
        group_size=batch.group_size)  # (b, R); one prompt pass per group
    mask = batch.response_mask  # (b, R)
    loss, metrics = policy_loss_wrapper(
        cfg.algo, logp, batch.old_logp, batch.ref_logp, advantages, mask,
        batch.lengths, cfg.loss_config(),
        values=values, old_values=batch.old_values, returns=returns, logits=logits,
        ent_coef=cfg.ent_coef, return_metrics=True,
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
    optimizer.step()
    on = mask > 0
    metrics["grad_norm"] = float(grad_norm)
    metrics["ratio_dev"] = float((logp.detach() - batch.old_logp)[on].exp().sub(1).abs().max())
    return metrics


def rollout_and_update(cfg: TrainConfig, policy, reference, optimizer, task: Task,
                       generator: torch.Generator, engine: RolloutEngine | None = None) -> dict:
    """One rollout + ``epochs`` x ``minibatches`` updates; returns the step's metrics.
    With an ``engine`` the batch is sampled by it and corrected as ``cfg`` says
    (``off_policy_batch``)."""
    group = cfg.group_size()
    num_groups = cfg.samples_per_step // group
    policy.eval()
    if engine is not None:
        engine.sync(policy)

    def sample_round() -> Rollout:
        if engine is None:
            return collect_rollout(policy, reference, task, num_groups, group,
                                   cfg.temperature, generator)
        return engine.collect(reference, task, num_groups, group, cfg.temperature, generator)

    first = sample_round()
    sampled = sampled_metrics(first)  # what the policy samples, before any filtering
    first = apply_dapo_options(cfg, first, task.max_new_tokens)
    sampled["frac_reward_zero_std"] = (float(zero_std_groups(first.rewards, group).float().mean())
                                       if group > 1 else float("nan"))
    batch, rounds = first, 1
    if cfg.dynamic_sampling:
        pending = [first]

        def next_round() -> Rollout:
            return pending.pop() if pending else apply_dapo_options(
                cfg, sample_round(), task.max_new_tokens)

        parts, picks = dynamic_sampling(next_round, num_groups, group, cfg.max_gen_batches)
        rows = torch.tensor([(r * num_groups + g) * group + i
                             for r, g in picks for i in range(group)])  # (B,)
        batch, rounds = Rollout.concat(parts).select(rows), len(parts)
    advantages, returns = compute_advantages(cfg, batch)
    off_policy = off_policy_batch(cfg, policy, batch, advantages) if engine else {}
    advantages = off_policy.get("advantages", advantages)
    policy.train()

    updates = []
    for _ in range(cfg.epochs):
        for rows in minibatch_rows(len(batch), group, cfg.minibatches, generator):
            minibatch = batch.select(rows).trimmed(keep_prompt=policy.padding_counts)
            width = minibatch.responses.shape[1]  # per-token tensors lose the padded tail
            adv = advantages[rows] if advantages.dim() == 1 else advantages[rows, :width]
            ret = None if returns is None else returns[rows, :width]
            updates.append(update_on_minibatch(cfg, policy, optimizer, minibatch, adv, ret))

    def mean_of(key):
        values = [u[key] for u in updates if key in u]
        return sum(values) / len(values) if values else float("nan")

    mask = batch.response_mask
    kl_ref = kl_estimate(batch.old_logp, batch.ref_logp, "k3")  # (B, R)
    return {
        **sampled,
        "loss": mean_of("loss"),
        "policy_loss": mean_of("policy_loss"),
        "policy_loss_first": updates[0]["policy_loss"],
        "clipfrac": mean_of("clipfrac"),
        "approx_kl": mean_of("approx_kl"),
        "kl_ref": float((kl_ref * mask).sum() / mask.sum().clamp_min(1.0)),
        "entropy": mean_of("entropy"),
        "grad_norm": mean_of("grad_norm"),
        "value_loss": mean_of("value_loss"),
        "ratio_dev_first": updates[0]["ratio_dev"],
        "rollout_kl": off_policy.get("rollout_kl", float("nan")),
        "is_weight_mean": off_policy.get("is_weight_mean", float("nan")),
        "gen_rounds": float(rounds),
        "samples_generated": float(rounds * cfg.samples_per_step),
    }


def sampled_metrics(batch: Rollout) -> dict:
    """The task reward and length of a freshly sampled batch, and the mean reward per
    prompt length (``reward_len3`` ..., NaN for a length the batch does not have)."""
    prompt_lengths = torch.tensor([len(p) for p in batch.prompts])  # (B,)
    out = {"reward": float(batch.rewards.mean()),
           "response_length": float(batch.lengths.float().mean())}
    for n in PROMPT_LENGTHS:
        of_length = prompt_lengths == n  # (B,)
        out[f"reward_len{n}"] = (float(batch.rewards[of_length].mean()) if of_length.any()
                                 else float("nan"))
    return out


@torch.no_grad()
def off_policy_batch(cfg: TrainConfig, policy, batch: Rollout, advantages) -> dict:
    """Apply ``cfg.old_logp_source`` and ``cfg.rollout_correction`` to an engine's batch.

    ``"recompute"``: ``batch.old_logp`` becomes the trainer's log pi_old (a forward pass,
    verl's decoupled mode) and the engine's log-probs give the correction weights
    w = f(pi_old / pi_rollout) (``rlviz.losses.is_correction_weights``), folded into
    per-token advantages ``w * A`` (``weighted_advantages``: the same loss as weighting the
    per-token policy loss). ``"rollout"``: the engine's log-probs stay pi_old (bypass).
    Returns the new ``advantages`` (when weighted), ``rollout_kl`` and ``is_weight_mean``.
    """
    if cfg.old_logp_source == "rollout":
        return {}
    rollout_logp = batch.old_logp  # (B, R) log pi_rollout
    batch.old_logp = old_logp_for_ratio("recompute", recompute_old_logp(policy, batch),
                                        rollout_logp)
    mask = batch.response_mask
    kl = kl_estimate(rollout_logp, batch.old_logp, "k3")  # (B, R), KL(rollout || old)
    out = {"rollout_kl": float((kl * mask).sum() / mask.sum().clamp_min(1.0))}
    if cfg.rollout_correction != "none":
        weights = is_correction_weights(cfg.rollout_correction, batch.old_logp, rollout_logp,
                                        mask, cfg.rollout_cap)  # (B, R)
        out["advantages"] = weighted_advantages(advantages, weights)  # (B, R)
        out["is_weight_mean"] = float(weights.sum() / mask.sum().clamp_min(1.0))
    return out


def apply_dapo_options(cfg: TrainConfig, batch: Rollout, budget: int) -> Rollout:
    """DAPO's soft overlong punishment (added to the rewards the advantages see; the
    ``reward`` metric stays the task's) and overlong filtering (truncated responses get
    an all-zero mask, so they carry no loss)."""
    if cfg.overlong_buffer:
        batch.rewards = batch.rewards + soft_overlong_penalty(
            batch.lengths, budget, cfg.overlong_buffer)  # (B,)
    if cfg.overlong_filter:
        keep = ~truncated(batch.responses, EOS)  # (B,)
        batch.response_mask = batch.response_mask * keep[:, None]  # (B, R)
    return batch


def train(cfg: TrainConfig | None = None, progress: bool = True, callback=None,
          policy: CausalPolicy | None = None) -> TrainResult:
    """Train a fresh ``CausalPolicy`` (or ``policy``) on ``cfg.task`` with ``cfg.algo``.

    Seeded by ``cfg.seed`` (model, prompts, sampling, minibatch order) and deterministic
    on the CPU. ``progress`` shows a tqdm bar (terminal and JupyterLab); ``callback(row)``
    is called with each step's metrics. Stops early when ``cfg.stop_reward`` is set and
    the mean reward of ``cfg.window`` consecutive steps reaches it.
    """
    cfg = TrainConfig() if cfg is None else cfg
    cfg.validate()
    task = get_task(cfg.task)
    with _cpu_settings():
        policy = build_policy(cfg, task) if policy is None else policy
        reference = frozen_copy(policy)
        # fused: one kernel for all parameters, ~3x faster than the per-tensor loop here
        optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr, fused=True)
        generator = torch.Generator().manual_seed(cfg.seed)
        eval_generator = torch.Generator().manual_seed(cfg.seed + 10_000)  # fresh prompts
        result = TrainResult(cfg=cfg, task=task, policy=policy, reference=reference)
        engine = None
        if cfg.off_policy_engine():
            engine = RolloutEngine(policy, cfg.rollout_dtype, cfg.rollout_top_p,
                                   cfg.rollout_top_k, cfg.staleness)

        start = time.perf_counter()
        bar = tqdm(range(cfg.steps), desc=f"{cfg.algo} on {cfg.task}", disable=not progress,
                   leave=True, dynamic_ncols=True)
        for step in bar:
            row = {"step": step}
            row.update(rollout_and_update(cfg, policy, reference, optimizer, task, generator,
                                          engine))
            last = step == cfg.steps - 1
            rewards = [r["reward"] for r in result.metrics[-cfg.window:]] + [row["reward"]]
            recent = rewards[-cfg.window:]
            stop = (cfg.stop_reward is not None and len(recent) == cfg.window
                    and sum(recent) / cfg.window >= cfg.stop_reward)
            if step % cfg.eval_every == 0 or last or stop:
                policy.eval()
                row["greedy_reward"] = evaluate(policy, task, cfg.eval_prompts, eval_generator)
            else:
                row["greedy_reward"] = float("nan")
            row["seconds"] = time.perf_counter() - start
            row = {k: row[k] for k in METRIC_NAMES}
            result.metrics.append(row)
            bar.set_postfix(reward=f"{row['reward']:.3f}", loss=f"{row['loss']:+.4f}")
            if callback is not None:
                callback(row)
            if stop:
                break
        bar.close()
        policy.eval()
    return result


def summary(result: TrainResult, threshold: float = 0.9) -> str:
    """A few lines: settings, final reward (sampled and greedy), time to the threshold."""
    cfg, rows = result.cfg, result.metrics
    last = rows[-1]
    greedy = [r["greedy_reward"] for r in rows if not math.isnan(r["greedy_reward"])]
    steps, seconds = result.steps_to(threshold, cfg.window)
    reached = (f"reached a {cfg.window}-step mean reward >= {threshold} after {steps} steps "
               f"({seconds:.1f} s)" if steps else f"did not reach a mean reward of {threshold}")
    return "\n".join([
        f"algo {cfg.algo} on task {cfg.task}: {len(rows)} steps in {last['seconds']:.1f} s",
        f"final reward {last['reward']:.3f} (sampled), "
        f"{greedy[-1]:.3f} (greedy, fresh prompts)" if greedy else
        f"final reward {last['reward']:.3f}",
        f"final response length {last['response_length']:.2f}, loss {last['loss']:+.4f}, "
        f"kl_ref {last['kl_ref']:.4f}, entropy {last['entropy']:.3f}",
        reached,
    ])

