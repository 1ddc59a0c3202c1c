"""``HParams``: every loss hyper-parameter of every algorithm, with its one default.

An algorithm's spec (``rlviz.algorithms.registry``) changes a few of these defaults; a
``Config`` field of the same name that is not None overrides them again. The resolution
``resolve`` is the only place that combines the three.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping


@dataclass(frozen=True)
class HParams:
    """The hyper-parameters one algorithm runs with (``cfg.hparams()`` returns one).

    Read as attributes (``hp.beta``) or, like the dict it replaces, ``hp["beta"]`` /
    ``hp.get("beta")``. The defaults below are the single home of every default; the
    registry's specs change some of them per algorithm.
    """

    # which algorithm, and the three things its spec fixes (not overridable)
    algo: str = ""
    advantage: str = "group"  # "batch-centred" | "group" | "gae"
    kl_in: str = "none"  # where the KL to the reference goes: "loss" | "reward" | "none"
    needs_critic: bool = False
    # the clipped surrogate (PPO, arXiv 1707.06347; DAPO's clip-higher; dual clip)
    eps_low: float = 0.2  # rho >= 1 - eps_low (0.2: the PPO paper's and TRL's epsilon)
    eps_high: float | None = None  # rho <= 1 + eps_high; None: eps_low (symmetric)
    dual_clip: float | None = None  # dual-clip constant c > 1 for A < 0; None: off
    ratio_level: str = "token"  # "token" | "sequence" (GSPO)
    # SAPO's soft gate (arXiv 2511.20347): temperatures for A > 0 and A <= 0
    tau_pos: float = 1.0  # verl 0.9.1 actor.yaml "tau_pos: 1.0"; TRL sapo_temperature_pos
    tau_neg: float = 1.05  # verl 0.9.1 actor.yaml "tau_neg: 1.05"; TRL sapo_temperature_neg
    # Clip-Cov / KL-Cov (arXiv 2505.22617), verl 0.9.1 actor.yaml policy_loss defaults
    clip_cov_ratio: float = 2e-4  # share of valid tokens whose loss Clip-Cov drops
    clip_cov_lb: float = 1.0  # covariance window of the tokens Clip-Cov may drop
    clip_cov_ub: float = 5.0
    kl_cov_ratio: float = 2e-4  # share of valid tokens KL-Cov penalises
    ppo_kl_coef: float = 1.0  # KL-Cov's weight of |log rho|
    # the KL to the reference
    beta: float = 0.0
    kl_estimator: str = "k3"  # "k1" | "k2" | "k3"
    # advantages
    adv_scale: str = "group"  # "group" | "batch" | "none" (group advantages)
    gamma: float = 1.0  # GAE discount
    lam: float = 0.95  # GAE lambda (TRL's PPO default; verl's algorithm.lam is 1.0)
    # aggregation over tokens and responses (rlviz.aggregate)
    loss_agg_mode: str = "token-mean"
    max_len: int | None = None  # constant of "seq-mean-token-sum-norm"; None: T
    # critic and entropy
    vf_clip_range: float | None = None  # value-loss clip range; None: unclipped
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    # the demo's GRPO divides by the number of groups: its group size
    group_size: int = 1

    def __post_init__(self):
        if self.eps_high is None:
            object.__setattr__(self, "eps_high", self.eps_low)

    # the dict interface of the earlier ``cfg.hparams()``
    def __getitem__(self, name: str):
        if name not in HPARAM_NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default=None):
        return getattr(self, name) if name in HPARAM_NAMES else default

    def __contains__(self, name) -> bool:
        return name in HPARAM_NAMES

    def keys(self):
        return HPARAM_NAMES

    def as_dict(self) -> dict:
        return asdict(self)


HPARAM_NAMES: tuple[str, ...] = tuple(f.name for f in fields(HParams))
# Fixed by the algorithm's spec, never taken from a Config.
SPEC_FIELDS = ("algo", "advantage", "kl_in", "needs_critic")
# Everything else may be overridden by a Config field of the same name that is not None.
OVERRIDABLE = tuple(name for name in HPARAM_NAMES if name not in SPEC_FIELDS)


def unknown_names(names, what: str) -> None:
    """``ValueError`` listing the names that are not fields of ``HParams``."""
    unknown = sorted(set(names) - set(HPARAM_NAMES))
    if unknown:
        raise ValueError(f"{what}: unknown hyper-parameters {unknown}. "
                         f"Known: {', '.join(HPARAM_NAMES)}")


def resolve(spec, overrides: Mapping) -> HParams:
    """``HParams`` of algorithm ``spec``: the class defaults, then ``spec.defaults``, then
    every value of ``overrides`` that is not None, read through ``spec.config_names``
    (hyper-parameter -> the name to read in ``overrides``, or None to ignore it: the demo's
    algorithms read their clip range and KL weight from the demo's ``clip_range`` and
    ``beta_kl`` and nothing else; algorithms without a critic ignore ``vf_coef`` and
    ``ent_coef``, which ``Config`` always sets).

    Setting only ``eps_low`` sets both sides of the clip (``eps_high`` follows it).
    """
    values = dict(spec.defaults)
    user_set = {}
    for name in OVERRIDABLE:
        key = spec.config_names.get(name, name)  # None: this algorithm ignores the field
        value = None if key is None else overrides.get(key)
        if value is not None:
            user_set[name] = value
    values.update(user_set)
    if "eps_low" in user_set and "eps_high" not in user_set:
        values["eps_high"] = None  # follows eps_low
    return HParams(algo=spec.name, advantage=spec.advantage, kl_in=spec.kl_in,
                   needs_critic=spec.needs_critic, **values)
