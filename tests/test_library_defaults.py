"""docs/library-defaults.md is generated from rlviz.library_defaults, and the data is consistent."""

import pathlib
import subprocess
import sys

from rlviz.library_defaults import DEFAULTS, markdown

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_committed_doc_equals_generated_text():
    committed = (ROOT / "docs" / "library-defaults.md").read_text()
    assert committed == markdown(), (
        "docs/library-defaults.md is stale: run `python -m rlviz.library_defaults > "
        "docs/library-defaults.md`")


def test_module_prints_the_document():
    out = subprocess.run([sys.executable, "-m", "rlviz.library_defaults"], cwd=ROOT,
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
