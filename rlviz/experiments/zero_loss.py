"""Experiments of notebook 01: why the demo's printed loss sits at zero while it learns.

Everything here runs the demo's own functions (``TinyPolicy``, ``make_fake_batch``,
``compute_advantage_from_reward``, ``policy_loss_wrapper``) or the loss family
(``clipped_surrogate``, ``aggregate``, ``kl_estimate``) and records what the printed loss
hides: the gradient, the size of the parameter update, the KL term, the ratio.
Pure torch, no plotting.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch

from ..algorithms import policy_loss_wrapper
from ..config import Config
from ..demo_training import compute_advantage_from_reward, demo_models, make_fake_batch
from ..losses import (
    aggregate,
    clip_fraction,
    clipped_surrogate,
    grpo_loss,
    kl_estimate,
)
from ..losses.checks import check_number, check_one_of, check_positive_int
from ..masks import compute_mask, mask_from_lengths
from ..models import TinyPolicy
from ..threads import one_torch_thread

__all__ = [
    "SMALL_SIZES",
    "DemoStepRecord",
    "ZeroLossLab",
    "ZeroLossRun",
    "demo_kl_weight",
    "embedding_share",
    "first_step_loss",
    "inner_epoch_losses",
    "run_demo_diagnostics",
    "small_config",
    "update_size_after_one_step",
]

# A demo Config with a small vocabulary: the same phenomena, ~100x less work per step.
SMALL_SIZES = {"vocab_size": 1000, "hidden_size": 64}


def small_config(**overrides) -> Config:
    """The demo's ``Config`` with ``SMALL_SIZES`` (vocabulary 1000, hidden 64) and overrides."""
    return Config(**{**SMALL_SIZES, **overrides})


@dataclass
class DemoStepRecord:
    """What one demo step computed, beyond the printed ``loss``.

    loss          the value ``train_step`` returns (and the demo prints)
    policy_term   the clipped-surrogate part of the loss (the loss with beta_kl = 0)
    kl_term       the KL part (the loss with all advantages 0); 0 for "ppo"
    adv_sum       sum of the batch's advantages (0 up to rounding: they are centred)
    ratio_min/max range of rho = exp(logp - old) over the response tokens
    k1_mean       mean over response tokens of k1 = logp - ref (what the demo's KL averages)
    k1_abs_mean   mean of |k1|: how far the log-probs are from the reference's
    grad_norm     L2 norm of the gradient over all parameters
    update_mean   mean |delta theta| / lr over the parameters that moved
    update_max    max |delta theta| / lr over all parameters
    moved_share   share of all parameters that changed in this step
    """

    step: int
    loss: float
    policy_term: float
    kl_term: float
    adv_sum: float
    ratio_min: float
    ratio_max: float
    k1_mean: float
    k1_abs_mean: float
    grad_norm: float
    update_mean: float
    update_max: float
    moved_share: float


def _grad_norm(params) -> float:
    """L2 norm of all parameters' gradients together: sqrt(sum_p ||g_p||^2), each ||g_p||
    in the gradients' dtype, the sum in float64."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norms = torch.stack(torch._foreach_norm(grads)).double()  # (P,) one norm per tensor
    return float(norms.square().sum().sqrt())


def _update_stats(before, params, lr: float) -> tuple[float, float, float]:
    """(mean |delta theta| / lr over the parameters that moved, max |delta theta| / lr,
    share of all parameters that moved)."""
    total = moved = 0
    sum_abs = largest = 0.0
    with torch.no_grad():
        for old, p in zip(before, params, strict=True):
            delta = old.sub_(p).abs_()  # same shape as p; reuses the copy's memory
            total += delta.numel()
            moved += int(torch.count_nonzero(delta))
            sum_abs += float(delta.sum(dtype=torch.float64))
            largest = max(largest, float(delta.max()))
    return sum_abs / max(moved, 1) / lr, largest / lr, moved / max(total, 1)


def _demo_step(cfg: Config, policy, ref_policy, optimizer, input_ids, actions, rewards,
               step: int, loss_scale: float = 1.0) -> DemoStepRecord:
    """``train_step``'s operations in its order (same loss, same update), plus records.

    ``loss_scale`` multiplies the loss before ``backward`` (1 = the demo); the record's
    ``loss`` is the unscaled value, as the demo prints it.
    """
    with torch.no_grad():
        pi_old_logprob = policy.log_prob(input_ids, actions)  # (B, T)
        pi_ref_logprob = ref_policy.log_prob(input_ids, actions)  # (B, T)
    pi_logprob = policy.log_prob(input_ids, actions)  # (B, T)
    advantage = compute_advantage_from_reward(rewards)  # (B,)
    bs, seq_len = pi_logprob.shape
    mask = compute_mask(bs, seq_len, cfg.input_len, cfg.device, pi_logprob.dtype)  # (B, T)
    len_oi = torch.full((bs,), seq_len - cfg.input_len, device=cfg.device, dtype=torch.long)
    loss = policy_loss_wrapper(cfg.algo, pi_logprob, pi_old_logprob, pi_ref_logprob,
                               advantage, mask, len_oi, cfg)

    # the two parts of the loss, from the demo's own functions (no gradient needed)
    with torch.no_grad():
        if cfg.algo == "grpo":
            args = dict(pi_logprob=pi_logprob, pi_old_logprob=pi_old_logprob,
                        pi_ref_logprob=pi_ref_logprob, mask=mask, len_oi=len_oi,
                        group_num=cfg.group_num, clip_range=cfg.clip_range)
            policy_term = float(grpo_loss(advantage=advantage, beta_kl=0.0, **args))
            kl_term = float(grpo_loss(advantage=torch.zeros_like(advantage),
                                      beta_kl=cfg.beta_kl, **args))
        else:
            policy_term, kl_term = float(loss), 0.0
        on = mask > 0
        ratio = torch.exp(pi_logprob - pi_old_logprob)[on]  # (N,) response tokens
        k1 = (pi_logprob - pi_ref_logprob)[on].double()  # (N,)

    params = [p for p in policy.parameters()]
    before = [p.detach().clone() for p in params]
    optimizer.zero_grad()
    (loss * loss_scale if loss_scale != 1.0 else loss).backward()
    optimizer.step()
    lr = optimizer.param_groups[0]["lr"]
    update_mean, update_max, moved_share = _update_stats(before, params, lr)
    return DemoStepRecord(
        step=step, loss=loss.item(), policy_term=policy_term, kl_term=kl_term,
        adv_sum=float(advantage.double().sum()), ratio_min=float(ratio.min()),
        ratio_max=float(ratio.max()), k1_mean=float(k1.mean()),
        k1_abs_mean=float(k1.abs().mean()), grad_norm=_grad_norm(params),
        update_mean=update_mean, update_max=update_max, moved_share=moved_share,
    )


def run_demo_diagnostics(algo: str = "grpo", steps: int = 10, cfg: Config | None = None,
                         optimizer: str = "adam", loss_scale: float = 1.0,
                         seed: int | None = None, dtype: torch.dtype = torch.float32,
                         single_thread: bool | None = None, return_policy: bool = False):
    """The demo's loop (``run_demo``) recording a ``DemoStepRecord`` per step.

    With the defaults it makes the same random draws, losses and weights as
    ``run_demo(algo, steps, cfg)`` (tests check this bit for bit). ``optimizer="sgd"``
    swaps Adam for plain SGD at the same lr, and ``loss_scale`` multiplies the loss before
    ``backward``; both exist to contrast how the two optimizers react to the gradient's
    scale. ``seed`` (if given) calls ``torch.manual_seed(seed)`` first. ``dtype`` is the
    models' dtype (the demo's float32 by default). ``single_thread`` runs on one torch
    thread (see ``one_torch_thread``); by default it does for vocabularies up to 4096.
    Returns the list of records, or ``(records, policy)`` with ``return_policy=True``.
    """
    check_one_of(algo, "algo (the demo's)", ("ppo", "grpo"))
    check_one_of(optimizer, "optimizer", ("adam", "sgd"))
    cfg = replace(Config() if cfg is None else cfg, algo=algo)
    if single_thread is None:
        single_thread = cfg.vocab_size <= 4096
    if single_thread:
        with one_torch_thread():
            records, policy = _demo_loop(cfg, steps, optimizer, loss_scale, seed, dtype)
    else:
        records, policy = _demo_loop(cfg, steps, optimizer, loss_scale, seed, dtype)
    return (records, policy) if return_policy else records


def _demo_loop(cfg, steps, optimizer, loss_scale, seed, dtype):
    if seed is not None:
        torch.manual_seed(seed)
    policy, ref_policy, opt = demo_models(cfg, optimizer, dtype)
    bs = cfg.group_num * 2  # the demo's two prompts per batch
    records = []
    for step in range(steps):
        input_ids, actions, rewards = make_fake_batch(cfg, bs)
        records.append(_demo_step(cfg, policy, ref_policy, opt, input_ids, actions, rewards,
                                  step, loss_scale))
    return records, policy


def embedding_share(cfg: Config | None = None) -> dict:
    """How many of ``TinyPolicy``'s parameters sit in its token embedding.

    A batch only gives a gradient to the embedding rows of the tokens it feeds in at
    response positions (at most B * L of them); every other row has gradient exactly 0 and
    Adam does not move it. Returns ``embedding``, ``total`` (parameter counts), ``share``
    = embedding / total and ``response_inputs`` = B * L, the most rows one demo batch can
    touch. The model is built on the meta device (shapes only, no memory).
    """
    cfg = Config() if cfg is None else cfg
    with torch.device("meta"):
        policy = TinyPolicy(cfg)
    embedding = policy.embed.weight.numel()
    total = sum(p.numel() for p in policy.parameters())
    return {"embedding": embedding, "total": total, "share": embedding / total,
            "response_inputs": cfg.group_num * 2 * (cfg.seq_len - cfg.input_len)}


def update_size_after_one_step(cfg: Config | None = None, loss_scales=(1.0, 10.0),
                               seed: int = 0) -> dict:
    """Mean |delta theta| / lr after one demo step, for Adam and SGD at each loss scale.

    Returns ``{("adam", scale): value, ("sgd", scale): value, ...}``. Every run starts
    from the same weights and batch (``torch.manual_seed(seed)``). Adam's first step is
    lr * g / (|g| + eps) = lr * sign(g) wherever |g| >> eps = 1e-8: the same whatever the
    scale. SGD's is lr * g: proportional to the scale. The models run in float64 here:
    in float32 an SGD step of lr * |g| ~ 1e-4 * 1e-3 is near the spacing of float32
    numbers around the weights (~6e-8 near 0.5), and rounding would blur the comparison.
    """
    cfg = small_config(algo="grpo") if cfg is None else cfg
    out = {}
    for name in ("adam", "sgd"):
        for scale in loss_scales:
            record = run_demo_diagnostics(cfg.algo, 1, cfg, optimizer=name,
                                          loss_scale=float(scale), seed=seed,
                                          dtype=torch.float64)[0]
            out[(name, float(scale))] = record.update_mean
    return out


def demo_kl_weight(cfg: Config | None = None, seed: int = 0) -> dict:
    """Where the weight of the demo's KL term comes from, checked with autograd.

    On one demo batch with a perturbed policy (so that logp != ref), the gradient of the
    demo's KL part (``grpo_loss`` with all advantages 0) w.r.t. each response token's
    log-prob is compared with beta / (G L^2), and the gradient of its policy part at
    rho = 1 with -A_i / (G L). Returns the measured and predicted numbers.
    """
    cfg = small_config(algo="grpo") if cfg is None else replace(cfg, algo="grpo")
    with one_torch_thread():
        return _demo_kl_weight(cfg, seed)


def _demo_kl_weight(cfg: Config, seed: int) -> dict:
    torch.manual_seed(seed)
    policy = TinyPolicy(cfg)
    input_ids, actions, rewards = make_fake_batch(cfg, cfg.group_num * 2)
    with torch.no_grad():
        ref = policy.log_prob(input_ids, actions)  # (B, T)
        shifted = ref + 0.1 * torch.randn(ref.shape)  # (B, T), a policy that moved
    logp = shifted.clone().requires_grad_(True)  # (B, T)
    bs, seq_len = logp.shape
    mask = compute_mask(bs, seq_len, cfg.input_len, "cpu", logp.dtype)  # (B, T)
    length = seq_len - cfg.input_len
    len_oi = torch.full((bs,), length, dtype=torch.long)
    advantage = compute_advantage_from_reward(rewards)  # (B,)
    common = dict(pi_old_logprob=logp.detach(), pi_ref_logprob=ref, mask=mask, len_oi=len_oi,
                  group_num=cfg.group_num, clip_range=cfg.clip_range)

    kl_part = grpo_loss(pi_logprob=logp, advantage=torch.zeros_like(advantage),
                        beta_kl=cfg.beta_kl, **common)
    (kl_grad,) = torch.autograd.grad(kl_part, logp)  # (B, T)
    policy_part = grpo_loss(pi_logprob=logp, advantage=advantage, beta_kl=0.0, **common)
    (pg_grad,) = torch.autograd.grad(policy_part, logp)  # (B, T)

    on = mask > 0
    k1 = (logp.detach() - ref)  # (B, T)
    G, L, beta = cfg.group_num, length, cfg.beta_kl
    kl_by_formula = beta * float((k1 * mask).double().sum()) / (G * L * L)
    return {
        "G": G, "L": L, "beta": beta,
        "kl_part": kl_part.item(),
        "kl_part_formula": kl_by_formula,
        "kl_grad_min": float(kl_grad[on].min()),
        "kl_grad_max": float(kl_grad[on].max()),
        "kl_grad_formula": beta / (G * L * L),
        "kl_grad_outside_mask": float(kl_grad[~on].abs().max()),
        "pg_grad_error": float((pg_grad - (-advantage.view(bs, 1) / (G * L)) * mask)
                               .abs().max()),
        "pg_grad_scale": 1.0 / (G * L),
        "relative_weight": (beta / (G * L * L)) / (1.0 / (G * L)),
    }


def inner_epoch_losses(algo: str = "grpo", epochs: int = 4, cfg: Config | None = None,
                       seed: int = 0) -> list[dict]:
    """Several updates on one demo batch with ``pi_old`` frozen at the first epoch.

    This is what PPO and GRPO do with ``ppo_epochs`` / ``num_iterations`` > 1; the demo
    does one. Epoch 1 has rho = 1 (loss 0 up to rounding); from epoch 2 on the policy has
    moved, rho != 1, and the loss is not 0. Returns per epoch ``loss``, ``grad_norm``,
    ``ratio_max_dev`` = max |rho - 1| over response tokens.
    """
    cfg = replace(small_config() if cfg is None else cfg, algo=algo)
    with one_torch_thread():
        return _inner_epoch_losses(cfg, algo, epochs, seed)


def _inner_epoch_losses(cfg: Config, algo: str, epochs: int, seed: int) -> list[dict]:
    torch.manual_seed(seed)
    policy, ref_policy, opt = demo_models(cfg)
    input_ids, actions, rewards = make_fake_batch(cfg, cfg.group_num * 2)
    with torch.no_grad():
        old = policy.log_prob(input_ids, actions)  # (B, T), frozen for all epochs
        ref = ref_policy.log_prob(input_ids, actions)  # (B, T)
    advantage = compute_advantage_from_reward(rewards)  # (B,)
    bs, seq_len = old.shape
    mask = compute_mask(bs, seq_len, cfg.input_len, "cpu", old.dtype)  # (B, T)
    len_oi = torch.full((bs,), seq_len - cfg.input_len, dtype=torch.long)
    out = []
    for epoch in range(1, epochs + 1):
        logp = policy.log_prob(input_ids, actions)  # (B, T)
        loss = policy_loss_wrapper(algo, logp, old, ref, advantage, mask, len_oi, cfg)
        opt.zero_grad()
        loss.backward()
        deviation = float((torch.exp(logp.detach() - old) - 1.0)[mask > 0].abs().max())
        out.append({"epoch": epoch, "loss": loss.item(),
                    "grad_norm": _grad_norm(list(policy.parameters())),
                    "ratio_max_dev": deviation})
        opt.step()
    return out


def first_step_loss(advantages: torch.Tensor, lengths: torch.Tensor, mode: str,
                    max_len: int | None = None) -> float:
    """The aggregated clipped-surrogate loss at rho = 1 (``old`` = the current log-probs).

    Each token's loss is -A_i, so the value depends only on the advantages (B,), the
    response lengths (B,) and the aggregation ``mode`` (see ``rlviz.aggregate``):
    seq-mean-token-mean gives -mean(A), token-mean -sum(L A) / sum(L).
    """
    lengths = torch.as_tensor(lengths)
    advantages = torch.as_tensor(advantages, dtype=torch.float32)
    width = int(lengths.max()) if max_len is None else max_len
    mask = mask_from_lengths(lengths, width)  # (B, T)
    logp = torch.full(mask.shape, -3.0)  # (B, T), any value: rho = exp(0) = 1
    per_token = clipped_surrogate(logp, logp.clone(), advantages, mask=mask)  # (B, T)
    return float(aggregate(per_token, mask, mode, max_len=max_len))


class ZeroLossLab:
    """The panel's small experiment: K inner epochs on one fixed batch.

    Built once (seeded): a ``TinyPolicy`` with ``vocab_size`` tokens, a frozen copy as
    reference, a demo-shaped batch of 8 responses of up to 24 tokens, rewards N(0, 1).
    ``run`` then trains a fresh copy of the policy for ``epochs`` Adam steps on that batch
    with the loss of the GRPO paper's form

        loss = aggregate(clipped_surrogate(logp, old, A), mask, mode)
               + beta * aggregate(k3(logp, ref), mask, mode)

    with ``old`` frozen at epoch 1, and records the value and the gradient norm per epoch.
    Response lengths are 24 - round(spread * 20 * u_i) with fixed u_i in [0, 1). The
    constant of "seq-mean-token-sum-norm" is the response budget 24 (``max_len``), not the
    mask's width 32, which includes the prompt.
    """

    def __init__(self, vocab_size: int = 256, hidden_size: int = 32, lr: float = 1e-3,
                 seed: int = 0):
        self.cfg = Config(vocab_size=vocab_size, hidden_size=hidden_size, lr=lr)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.policy = TinyPolicy(self.cfg)
        self.initial_state = {k: v.clone() for k, v in self.policy.state_dict().items()}
        bs, seq_len = self.cfg.group_num * 2, self.cfg.seq_len
        self.max_response = seq_len - self.cfg.input_len  # 24
        self.input_ids = torch.randint(0, vocab_size, (bs, seq_len), generator=generator)
        self.actions = torch.randint(0, vocab_size, (bs, seq_len), generator=generator)
        self.rewards = torch.randn(bs, generator=generator)  # (B,)
        self.length_draws = torch.rand(bs, generator=generator)  # (B,) u_i in [0, 1)
        with torch.no_grad(), one_torch_thread():
            self.ref_logp = self.policy.log_prob(self.input_ids, self.actions)  # (B, T)
        # (spread, mode, centred) -> FirstEpoch: the state after epoch 1, which beta does
        # not change (ZeroLossRun.extend); the oldest goes first beyond FIRST_EPOCHS_KEPT
        self.first_epochs: dict[tuple, FirstEpoch] = {}

    def lengths(self, spread: float) -> torch.Tensor:
        """Response lengths (B,) for a spread in [0, 1]: all 24 at 0, 4..24 at 1."""
        check_number(spread, "spread", 0.0, 1.0, low_open=False, high_open=False)
        cut = torch.round(spread * (self.max_response - 4) * self.length_draws)
        return (self.max_response - cut).long()

    def mask(self, spread: float) -> torch.Tensor:
        """(B, T) response mask: prompt of ``input_len`` tokens, then L_i response tokens."""
        lengths = self.lengths(spread)
        response = mask_from_lengths(lengths, self.max_response)  # (B, T - input_len)
        prompt = torch.zeros(len(lengths), self.cfg.input_len)
        return torch.cat([prompt, response], dim=1)  # (B, T)

    def advantages(self, centred: bool) -> torch.Tensor:
        """The demo's batch-centred r - mean(r), or the raw rewards when not centred."""
        return compute_advantage_from_reward(self.rewards) if centred else self.rewards.clone()

    def run(self, epochs: int = 4, beta: float = 0.0, spread: float = 0.0,
            mode: str = "seq-mean-token-mean", centred: bool = True) -> dict:
        """Train ``epochs`` steps from the initial weights; lists per epoch of ``loss``,
        ``policy_term``, ``kl_term`` (beta times the KL part), ``grad_norm`` and
        ``clipfrac`` (share of tokens the clip stopped), all before that epoch's step."""
        return self.start(beta, spread, mode, centred).extend(epochs).record

    def start(self, beta: float = 0.0, spread: float = 0.0, mode: str = "seq-mean-token-mean",
              centred: bool = True) -> "ZeroLossRun":
        """A run at these settings with no epoch trained yet (``ZeroLossRun.extend``)."""
        check_number(beta, "beta", 0.0, low_open=False)
        return ZeroLossRun(self, beta, spread, mode, centred)


def _optimizer_state_copy(state_dict: dict) -> dict:
    """An optimizer ``state_dict`` with its state tensors cloned: what ``copy.deepcopy``
    gives for Adam's (tensors, numbers, lists), in ~0.06 ms instead of ~0.5."""
    return {"state": {index: {key: value.clone() if torch.is_tensor(value) else value
                              for key, value in state.items()}
                      for index, state in state_dict["state"].items()},
            "param_groups": [dict(group, params=list(group["params"]))
                             for group in state_dict["param_groups"]]}


FIRST_EPOCHS_KEPT = 64  # settings whose first epoch a ZeroLossLab keeps (~0.2 MB each)


@dataclass
class FirstEpoch:
    """What epoch 1 of a ``ZeroLossRun`` left: weights, Adam state, pi_old and the records
    (except ``kl_term``, which is beta * 0 at epoch 1)."""

    policy_state: dict
    optimizer_state: dict
    old: torch.Tensor  # (B, T)
    record: dict


class ZeroLossRun:
    """One setting of ``ZeroLossLab``, trained epoch by epoch on its own copy of the
    initial policy: ``extend(k)`` trains until ``k`` epochs are recorded. The first K
    epochs of a longer run are exactly a K-epoch run, so the panel's epochs slider only
    extends a run (or redraws), it never starts one over.

    Epoch 1 does not depend on beta: the policy still equals the reference, so
    d = ref - logp = 0 on every token, k3 = e^0 - 0 - 1 = 0 and its gradient
    1 - e^0 = 0, exactly. Runs that differ only in beta therefore share it: the first
    run to train epoch 1 keeps its state in ``lab.first_epochs`` and the others start
    from a copy (checked once per setting: only when pi_old equals the reference's
    log-probs bit for bit)."""

    def __init__(self, lab: ZeroLossLab, beta: float, spread: float, mode: str,
                 centred: bool):
        self.lab, self.beta, self.mode = lab, float(beta), mode
        self.setting = (float(spread), mode, bool(centred))  # what epoch 1 depends on
        self.policy = copy.deepcopy(lab.policy)
        self.policy.load_state_dict(lab.initial_state)
        # fused: one kernel for all parameters (the panel's update is ~25% faster)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lab.cfg.lr, fused=True)
        self.mask = lab.mask(spread)  # (B, T)
        self.adv = lab.advantages(centred)  # (B,)
        self.old = None  # (B, T) log pi_old, frozen at the first epoch
        self.record = {"loss": [], "policy_term": [], "kl_term": [], "grad_norm": [],
                       "clipfrac": []}

    def extend(self, epochs: int) -> "ZeroLossRun":
        """Train until ``epochs`` epochs are recorded (nothing if there are already)."""
        check_positive_int(epochs, "epochs")
        with one_torch_thread():
            while len(self.record["loss"]) < epochs:
                if not self.record["loss"] and self._start_from_shared_first_epoch():
                    continue
                self._epoch()
                if len(self.record["loss"]) == 1:
                    self._share_first_epoch()
        return self

    def _share_first_epoch(self) -> None:
        """Keep the state after epoch 1 for runs at other betas (see the class docstring)."""
        kept = self.lab.first_epochs
        if self.setting in kept or not torch.equal(self.old, self.lab.ref_logp):
            return
        kept[self.setting] = FirstEpoch(
            policy_state={k: v.clone() for k, v in self.policy.state_dict().items()},
            optimizer_state=_optimizer_state_copy(self.optimizer.state_dict()),
            old=self.old,
            record={k: v[0] for k, v in self.record.items() if k != "kl_term"})
        if len(kept) > FIRST_EPOCHS_KEPT:
            del kept[next(iter(kept))]  # the oldest setting

    def _start_from_shared_first_epoch(self) -> bool:
        """Take epoch 1 from ``lab.first_epochs`` if it holds this setting."""
        first = self.lab.first_epochs.get(self.setting)
        if first is None:
            return False
        self.policy.load_state_dict(first.policy_state)  # copies into the run's tensors
        # load_state_dict keeps the given tensors: a copy, or two runs would share them
        self.optimizer.load_state_dict(_optimizer_state_copy(first.optimizer_state))
        self.old = first.old  # never modified in place
        for key, value in first.record.items():
            self.record[key].append(value)
        self.record["kl_term"].append(self.beta * 0.0)
        return True

    def _epoch(self) -> None:
        lab, mask, out = self.lab, self.mask, self.record
        logp = self.policy.log_prob(lab.input_ids, lab.actions)  # (B, T)
        if self.old is None:
            self.old = logp.detach()  # pi_old: frozen at the first epoch
        per_token = clipped_surrogate(logp, self.old, self.adv, mask=mask)  # (B, T)
        k3 = kl_estimate(logp, lab.ref_logp, "k3")  # (B, T)
        # max_len: the response budget (24), not the width T = 32 with the prompt
        policy_term = aggregate(per_token, mask, self.mode, max_len=lab.max_response)
        kl_term = aggregate(k3, mask, self.mode, max_len=lab.max_response)
        loss = policy_term + self.beta * kl_term
        self.optimizer.zero_grad()
        loss.backward()
        out["loss"].append(loss.item())
        out["policy_term"].append(policy_term.item())
        out["kl_term"].append(self.beta * kl_term.item())
        out["grad_norm"].append(_grad_norm(list(self.policy.parameters())))
        out["clipfrac"].append(clip_fraction(logp.detach(), self.old, self.adv, mask=mask))
        self.optimizer.step()
