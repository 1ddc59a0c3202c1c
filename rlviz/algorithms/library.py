"""What an rlviz recipe is called in the trainers people use: TRL and verl, versioned.

A ``LibraryRecipe`` holds the settings that select a recipe in one library version, as data:
TRL's are ``trl.GRPOConfig`` keyword arguments, verl's are Hydra overrides of
``verl.trainer.main_ppo`` (full keys). ``differences`` says, in words, what the library
still does differently with those settings, so nothing "close" passes for exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

TRL_VERSION = "1.16.0"
VERL_VERSION = "0.9.1"
ACTOR = "actor_rollout_ref.actor"  # verl's prefix of the actor (policy-loss) settings
# TRL 1.16.0 loss types with a loss of their own that aggregate like an aggregation loss type
# (trl/trainer/grpo_trainer.py: `if self.loss_type in ["grpo", "sapo"]:` ...
# `elif self.loss_type in ["cispo", "dapo", "vespo"]:`)
TRL_AGGREGATES_AS = {"sapo": "grpo", "cispo": "dapo", "vespo": "dapo"}


@dataclass(frozen=True)
class LibraryRecipe:
    """The settings of one library version that select a recipe.

    library:      "trl" or "verl"
    version:      the release the settings were read from (TRL_VERSION, VERL_VERSION)
    settings:     name -> value, spelled as the library spells it
    differences:  what the library does differently from rlviz's recipe with these settings
    supported:    False when the library has no way to run the recipe at all
    """

    library: str
    version: str
    settings: Mapping[str, object] = field(default_factory=dict)
    differences: tuple[str, ...] = ()
    supported: bool = True

    def __post_init__(self):
        if self.library not in ("trl", "verl"):
            raise ValueError(f"library must be 'trl' or 'verl', got {self.library!r}")

    def text(self) -> str:
        """``key=value, ...`` as one line (strings quoted for TRL's Python keywords)."""
        if not self.supported:
            return "not available"

        def show(value):
            if self.library == "trl" and isinstance(value, str):
                return f'"{value}"'
            return str(value)

        return ", ".join(f"{key}={show(value)}" for key, value in self.settings.items())


def trl(settings: Mapping, *differences: str) -> LibraryRecipe:
    """A TRL ``GRPOConfig`` recipe (keyword arguments), for ``TRL_VERSION``."""
    return LibraryRecipe("trl", TRL_VERSION, dict(settings), tuple(differences))


def verl(settings: Mapping, *differences: str) -> LibraryRecipe:
    """A verl ``main_ppo`` recipe (Hydra overrides), for ``VERL_VERSION``."""
    return LibraryRecipe("verl", VERL_VERSION, dict(settings), tuple(differences))


def unsupported(library: str, why: str) -> LibraryRecipe:
    version = TRL_VERSION if library == "trl" else VERL_VERSION
    return LibraryRecipe(library, version, {}, (why,), supported=False)
