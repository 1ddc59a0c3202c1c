"""Every cached experiment under data/experiments/ is what its code produces today: one
(config, seed) pair of each is re-run and must give the same numbers digit for digit
(``rlviz.experiments.runner.reproduce_one``; the wall clock is not compared). When this
fails after a change that moves the numbers on purpose, run ``make experiments``."""

import pytest

from rlviz.experiments.catalog import EXPERIMENTS
from rlviz.experiments.runner import CACHE_DIR, read_cache, reproduce_one

CACHES = sorted(p.stem for p in CACHE_DIR.glob("*.jsonl"))


def test_every_experiment_of_the_catalog_is_cached_as_defined():
    assert set(CACHES) == set(EXPERIMENTS)
    for name, experiment in EXPERIMENTS.items():
        provenance, records = read_cache(CACHE_DIR / f"{name}.jsonl")
        assert provenance["experiment"] == experiment.spec(), name
        assert sorted((r["config"], r["seed"]) for r in records) == sorted(experiment.pairs())


@pytest.mark.parametrize("name", CACHES)
def test_one_pair_of_each_cache_reproduces_exactly(name):
    assert reproduce_one(name) == []
