"""docs/library-defaults.md is generated from rlviz.algorithms.library_defaults, and the data is consistent."""

import pathlib
import subprocess
import sys

from rlviz.algorithms.library_defaults import DEFAULTS, markdown

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_committed_doc_equals_generated_text():
    committed = (ROOT / "docs" / "library-defaults.md").read_text()
    assert committed == markdown(), (
        "docs/library-defaults.md is stale: run `python -m rlviz.algorithms.library_defaults > "
        "docs/library-defaults.md`")


def test_module_prints_the_document():
    out = subprocess.run([sys.executable, "-m", "rlviz.algorithms.library_defaults"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == markdown()


def test_each_setting_has_one_value_per_release():
    by_setting = {}
    for d in DEFAULTS:
        assert d.library in ("trl", "verl")
        assert d.source, f"{d.setting}: no source"
        if d.to_version is not None:
            assert _key(d.from_version) <= _key(d.to_version), d
        by_setting.setdefault((d.library, d.setting), []).append(d)
    for (library, setting), rows in by_setting.items():
        rows.sort(key=lambda d: _key(d.from_version))
        for earlier, later in zip(rows, rows[1:]):
            assert earlier.to_version is not None, f"{library} {setting}: open range then more"
            assert _key(earlier.to_version) < _key(later.from_version), (
                f"{library} {setting}: {earlier.from_version}-{earlier.to_version} overlaps "
                f"{later.from_version}")


def test_pinned_values_quoted_elsewhere_match():
    """The pinned defaults the docstrings and notebooks rely on."""
    current = {(d.library, d.setting): d.value for d in DEFAULTS if d.to_version is None}
    assert current["verl", "algorithm.lam"] == "1.0"
    assert current["trl", "beta"] == "0.0"
    assert current["trl", "use_bias_correction_kl"] == "True"
    assert current["verl", "actor_rollout_ref.actor.clip_ratio_c"] == "3.0"


# ---- the pinned rows against the installed libraries themselves ------------------------

def _pinned(library: str):
    """Rows that hold for the pinned release and name one real setting."""
    for d in DEFAULTS:
        if d.library == library and d.to_version is None and d.value != "-" \
                and "(" not in d.setting and " " not in d.setting:
            yield d


def _parse(value: str):
    import ast

    if value in ("null", "None"):
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value  # a bare word such as low_var_kl or token-mean


def test_pinned_trl_rows_equal_the_installed_grpo_config_defaults():
    import dataclasses

    import trl

    assert trl.__version__ == "1.16.0"
    fields = {f.name: f.default for f in dataclasses.fields(trl.GRPOConfig)}
    rows = list(_pinned("trl"))
    assert len(rows) >= 6
    for d in rows:
        assert d.setting in fields, f"GRPOConfig has no field {d.setting!r}"
        assert fields[d.setting] == _parse(d.value), (d.setting, fields[d.setting], d.value)


def test_trl_has_no_ppo_trainer_in_the_pinned_release():
    import importlib.util

    import trl

    assert not hasattr(trl, "PPOTrainer")
    assert importlib.util.find_spec("trl.experimental.ppo") is None


def test_pinned_verl_rows_equal_the_shipped_trainer_config():
    import importlib.metadata
    import importlib.util

    from omegaconf import OmegaConf

    assert importlib.metadata.version("verl") == "0.9.1"
    config_dir = pathlib.Path(importlib.util.find_spec("verl").submodule_search_locations[0])
    config = OmegaConf.load(config_dir / "trainer" / "config" / "_generated_ppo_trainer.yaml")
    rows = list(_pinned("verl"))
    assert len(rows) >= 8
    for d in rows:
        shipped = OmegaConf.select(config, d.setting, default="<missing>")
        assert shipped != "<missing>", f"verl's config has no key {d.setting!r}"
        assert shipped == _parse(d.value), (d.setting, shipped, d.value)
