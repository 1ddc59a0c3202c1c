"""Configuration: the demo's ``Config`` and the seeding helper every notebook calls first."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from .algorithms import HParams, resolve_hparams


@dataclass
class Config:
    """Hyper-parameters of the original demo, then the knobs of the loss family.

    The first twelve fields are the demo's, with its defaults and in its order, so
    ``Config()`` behaves exactly like the demo's. Switch algorithm with ``cfg.algo``.

    How defaults work per algorithm:

    * ``clip_range`` and ``beta_kl`` are the demo's knobs and apply to the demo's
      algorithms ``"ppo"`` and ``"grpo"`` only.
    * The fields after ``device`` default to ``None``, meaning "use the default of the
      algorithm named by ``algo``" (see ``rlviz.HParams`` and ``LOSS_FN_REGISTRY[algo].defaults``). Setting one
      overrides that default for whichever family algorithm runs (the demo's two keep
      their own knobs and ignore these). So changing only ``cfg.algo``
      to ``"gspo"`` gives GSPO its own 3e-4 / 4e-4 clip range, and
      ``cfg.eps_low = 1e-3`` still overrides it (setting only ``eps_low`` sets both
      sides). ``cfg.hparams()`` shows the values that will be used.
    * ``vf_coef`` and ``ent_coef`` weight the value loss and the entropy bonus of the
      critic algorithm ``"ppo_gae"`` (the demo declares them but never uses them).
    """

    algo: str = "ppo"  # "ppo" / "grpo" (the demo's), or a key of LOSS_FN_REGISTRY
    lr: float = 1e-4
    clip_range: float = 0.2
    beta_kl: float = 0.01  # used by the demo's "grpo"
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    group_num: int = 4  # GRPO: responses per prompt (G)
    input_len: int = 8  # prompt length
    seq_len: int = 32
    vocab_size: int = 50257
    hidden_size: int = 256
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    # ---- loss-family overrides (None = the algorithm's own default) ----
    eps_low: float | None = None  # lower clip: rho >= 1 - eps_low
    eps_high: float | None = None  # upper clip: rho <= 1 + eps_high (DAPO's clip-higher)
    dual_clip: float | None = None  # dual-clip constant c > 1 for A < 0
    beta: float | None = None  # KL weight (in the loss or in the reward, per algorithm)
    kl_estimator: str | None = None  # "k1" / "k2" / "k3"
    adv_scale: str | None = None  # "group" / "batch" / "none" (group advantages)
    loss_agg_mode: str | None = None  # see rlviz.aggregate
    max_len: int | None = None  # constant normaliser of "seq-mean-token-sum-norm"
    gamma: float | None = None  # GAE discount
    lam: float | None = None  # GAE lambda
    vf_clip_range: float | None = None  # value-loss clip range c (critic algorithms)

    def hparams(self) -> HParams:
        """The hyper-parameters ``self.algo`` will run with: its defaults, then overrides."""
        return resolve_hparams(self)


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch. Everything in rlviz runs on the CPU, whose kernels
    give the same numbers run after run (``torch.use_deterministic_algorithms`` is not
    needed there, and importing what it pulls in costs seconds per notebook)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
