"""Multi-seed experiments: named configs x seeds, run in parallel, cached with provenance.

    exp = Experiment("entropy_bonus", configs={"bonus 0.01": {"ent_coef": 0.01},
                                               "no bonus": {"ent_coef": 0.0}},
                     seeds=range(10), base={"steps": 40})
    table = run_experiment(exp)          # a tqdm bar, then a ResultTable
    table.rows[0]                        # {"config": "bonus 0.01", "seed": 0, "step": 0, ...}

An experiment is a set of named configs (``TrainConfig`` fields on top of ``base``) times a
list of seeds. Every (config, seed) pair is one deterministic ``rlviz.train`` run; the runs
go to worker processes (one torch thread each, as many workers as cores). The result is one
tidy table: one row per config, seed and step.

The cache. ``data/experiments/<name>.jsonl`` holds one JSON line of provenance (the configs,
the seeds, the package and torch versions, a hash of the code that ran) and then one JSON
line per finished run, appended and flushed as soon as the run ends: an interrupted
experiment loses no finished run, and running it again only runs what is missing (a half-
written last line is ignored; runs go seed by seed across the configs). When the configs or
the code hash differ from the cache, the cache is started afresh (runs of seeds still wanted
are kept when only the seeds change). Numbers are stored with ``DIGITS`` significant digits;
``reproduce_one`` re-runs one pair and compares them digit for digit (the wall-clock column
``seconds`` is machine-dependent and left out of that check).

Run every experiment of ``rlviz.experiments.catalog`` with ``make experiments``
(``python -m rlviz.experiments.catalog [NAME ...]``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from ..trainer import METRIC_NAMES, TrainConfig, train

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # rlviz/
CACHE_DIR = PACKAGE_ROOT.parent / "data" / "experiments"
DIGITS = 7  # significant digits stored (float32 carries ~7)
# stored by default; "step" is the row index and is always stored
DEFAULT_METRICS = ("reward", "greedy_reward", "response_length", "entropy", "clipfrac",
                   "kl_ref", "seconds")
# metrics that depend on the machine's speed, not on the computation
WALL_CLOCK = ("seconds",)
# parts of the package that do not change training numbers (left out of the code hash)
NOT_HASHED = ("plots", "widgets", "exercises")
TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))


@dataclass(frozen=True)
class Experiment:
    """Named configs x seeds.

    name:     file name of the cache (letters, digits, ``_`` and ``-``)
    configs:  config name -> ``TrainConfig`` fields that differ from ``base``
    seeds:    the seeds every config runs with (``TrainConfig.seed``)
    base:     fields shared by every config
    metrics:  the per-step metrics stored (a subset of ``rlviz.trainer.METRIC_NAMES``)
    description: one line, for the provenance

    Bad input fails here, before anything runs, with a ``ValueError`` naming the argument.
    """

    name: str
    configs: Mapping[str, Mapping]
    seeds: Sequence[int]
    base: Mapping = field(default_factory=dict)
    metrics: Sequence[str] = DEFAULT_METRICS
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or not all(
                c.isalnum() or c in "_-" for c in self.name):
            raise ValueError(f"name must be a non-empty string of letters, digits, _ and -, "
                             f"got {self.name!r}")
        seeds = tuple(self.seeds) if isinstance(self.seeds, Iterable) else self.seeds
        if not isinstance(seeds, tuple) or not seeds:
            raise ValueError(f"seeds must be a non-empty list of integers, got {self.seeds!r}")
        if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
            raise ValueError(f"seeds must be integers, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        if not isinstance(self.configs, Mapping) or not self.configs:
            raise ValueError(f"configs must be a non-empty dict name -> fields, "
                             f"got {self.configs!r}")
        unknown = set(self.metrics) - set(METRIC_NAMES)
        if unknown:
            raise ValueError(f"metrics: unknown metric(s) {sorted(unknown)}; known: "
                             f"{', '.join(METRIC_NAMES)}")
        object.__setattr__(self, "metrics", tuple(m for m in self.metrics if m != "step"))
        _check_fields("base", self.base)
        for config_name, overrides in self.configs.items():
            if not isinstance(config_name, str) or not config_name:
                raise ValueError(f"configs: names must be non-empty strings, got {config_name!r}")
            _check_fields(f"configs[{config_name!r}]", overrides)
            try:
                self.train_config(config_name, seeds[0]).validate()
            except ValueError as error:
                raise ValueError(f"configs[{config_name!r}]: {error}") from None

    def train_config(self, config_name: str, seed: int) -> TrainConfig:
        """The ``TrainConfig`` of one run."""
        if config_name not in self.configs:
            raise ValueError(f"config_name: unknown config {config_name!r}; this experiment "
                             f"has {', '.join(map(repr, self.configs))}")
        return TrainConfig(**{**self.base, **self.configs[config_name], "seed": seed})

    def pairs(self) -> list[tuple[str, int]]:
        """Every (config, seed) pair, configs in their order, then seeds."""
        return [(c, s) for c in self.configs for s in self.seeds]

    def spec(self) -> dict:
        """What defines the runs (compared with a cache's provenance)."""
        return {"name": self.name, "base": dict(self.base),
                "configs": {k: dict(v) for k, v in self.configs.items()},
                "seeds": list(self.seeds), "metrics": list(self.metrics)}


def _check_fields(argument: str, values) -> None:
    if not isinstance(values, Mapping):
        raise ValueError(f"{argument} must be a dict of TrainConfig fields, got {values!r}")
    for key in values:
        if key == "seed":
            raise ValueError(f"{argument}: 'seed' is set by the experiment's seeds, not here")
        if key not in TRAIN_FIELDS:
            raise ValueError(f"{argument}: unknown TrainConfig field {key!r}; known fields: "
                             f"{', '.join(TRAIN_FIELDS)}")


def code_hash() -> str:
    """sha256 (first 16 hex digits) of the package's source files that training runs
    (everything under ``rlviz/`` except plots, widgets and exercises)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT)
        if relative.parts[0] in NOT_HASHED:
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def provenance(experiment: Experiment) -> dict:
    return {"experiment": experiment.spec(), "description": experiment.description,
            "rlviz": importlib.metadata.version("rlviz"), "torch": torch.__version__,
            "python": platform.python_version(), "code_hash": code_hash(),
            "digits": DIGITS}


def _stored(value) -> float | None:
    """A metric as stored: ``DIGITS`` significant digits, NaN as ``None`` (JSON null)."""
    value = float(value)
    if math.isnan(value):
        return None
    return float(f"{value:.{DIGITS}g}")


# ---- one run (in a worker process or here) ------------------------------------------
def run_one(experiment: Experiment, config_name: str, seed: int) -> dict:
    """Train one (config, seed) pair; the record stored in the cache."""
    result = train(experiment.train_config(config_name, seed), progress=False)
    return {"config": config_name, "seed": seed,
            "metrics": {m: [_stored(row[m]) for row in result.metrics]
                        for m in experiment.metrics}}


def _worker_init():
    torch.set_num_threads(1)


def _worker_run(job):
    experiment, config_name, seed = job
    return run_one(experiment, config_name, seed)


# ---- the cache ----------------------------------------------------------------------
def cache_path(name: str, cache_dir: Path | str | None = None) -> Path:
    return Path(CACHE_DIR if cache_dir is None else cache_dir) / f"{name}.jsonl"


def read_cache(path: Path | str) -> tuple[dict, list[dict]]:
    """``(provenance, records)`` of a cache file; a last line cut short is dropped."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no experiment cache at {path} (run `make experiments`)")
    lines = path.read_text().splitlines()
    if not lines:
        raise ValueError(f"empty experiment cache: {path}")
    header = json.loads(lines[0])
    records = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines):  # only an interrupted last write may be broken
                raise ValueError(f"{path}: line {number} is not valid JSON") from None
    return header["provenance"], records


def _write_line(handle, record: dict) -> None:
    handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _start_cache(path: Path, experiment: Experiment) -> list[dict]:
    """Records already finished for ``experiment`` at ``path`` (the cache is rewritten,
    empty, when it belongs to other configs, seeds or code)."""
    wanted = provenance(experiment)
    if path.exists():
        try:
            old, records = read_cache(path)
        except (ValueError, KeyError):
            old, records = None, []
        if old is not None and _same_runs(old, wanted):
            pairs = set(experiment.pairs())
            done = {(r["config"], r["seed"]): r for r in records
                    if (r["config"], r["seed"]) in pairs}
            with open(path, "w") as handle:  # drop a broken last line, keep the rest
                _write_line(handle, {"provenance": wanted})
                for record in done.values():
                    _write_line(handle, record)
            return list(done.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        _write_line(handle, {"provenance": wanted})
    return []


def _same_runs(old: dict, wanted: dict) -> bool:
    """Whether a cache's runs are runs of ``wanted``: same code, torch, configs and
    metrics (the seeds may differ: runs of seeds still wanted are kept)."""
    def without_seeds(spec):
        return {k: v for k, v in spec.items() if k != "seeds"}

    return (old.get("code_hash") == wanted["code_hash"] and old.get("torch") == wanted["torch"]
            and without_seeds(old["experiment"]) == without_seeds(wanted["experiment"]))


# ---- the tidy table ---------------------------------------------------------------
@dataclass
class ResultTable:
    """One row per (config, seed, step): ``{"config", "seed", "step", metric: value}``
    (NaN where a metric was not measured that step), plus the cache's provenance."""

    rows: list
    provenance: dict
    configs: tuple  # config names, in the experiment's order
    seeds: tuple

    @classmethod
    def from_records(cls, provenance: dict, records: list[dict]) -> ResultTable:
        spec = provenance["experiment"]
        order = {(c, s): i for i, (c, s) in enumerate(
            (c, s) for c in spec["configs"] for s in spec["seeds"])}
        rows = []
        for record in sorted(records, key=lambda r: order.get((r["config"], r["seed"]), -1)):
            metrics = record["metrics"]
            steps = len(next(iter(metrics.values())))
            for step in range(steps):
                row = {"config": record["config"], "seed": record["seed"], "step": step}
                for name, values in metrics.items():
                    row[name] = float("nan") if values[step] is None else values[step]
                rows.append(row)
        return cls(rows, provenance, tuple(spec["configs"]), tuple(spec["seeds"]))

    @property
    def metrics(self) -> tuple:
        return tuple(self.provenance["experiment"]["metrics"])

    def where(self, **conditions) -> list[dict]:
        """Rows whose columns equal the given values, e.g. ``table.where(config="dapo")``."""
        return [r for r in self.rows if all(r[k] == v for k, v in conditions.items())]

    def runs(self, config: str) -> dict[int, list[dict]]:
        """seed -> that run's rows, in step order."""
        runs: dict[int, list[dict]] = {}
        for row in self.where(config=config):
            runs.setdefault(row["seed"], []).append(row)
        return runs

    def matrix(self, config: str, metric: str):
        """``(steps, values)``: values (n_seeds, n_steps) of ``metric`` for ``config``,
        over the steps every seed ran (runs stopped early are cut to the shortest)."""
        import numpy as np

        if metric not in self.metrics and metric != "step":
            raise ValueError(f"metric: {metric!r} was not stored; stored: {self.metrics}")
        runs = self.runs(config)
        if not runs:
            raise ValueError(f"config: no runs of {config!r}; configs: {self.configs}")
        length = min(len(rows) for rows in runs.values())
        values = np.array([[row[metric] for row in rows[:length]] for rows in runs.values()])
        return np.arange(length), values

    def to_csv(self, path) -> None:
        import csv

        columns = ["config", "seed", "step", *self.metrics]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({k: r[k] for k in columns} for r in self.rows)


def load_results(name: str, cache_dir: Path | str | None = None) -> ResultTable:
    """The cached results of experiment ``name`` (nothing is run)."""
    provenance_, records = read_cache(cache_path(name, cache_dir))
    return ResultTable.from_records(provenance_, records)


# ---- running ----------------------------------------------------------------------
def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def run_experiment(experiment: Experiment, cache_dir: Path | str | None = None,
                   workers: int | None = None, progress: bool = True,
                   fresh: bool = False) -> ResultTable:
    """Run every (config, seed) pair not cached yet, append each finished run to the cache
    at once, and return the whole table. ``fresh=True`` discards the cache first;
    ``workers`` defaults to the number of cores (1 runs in this process)."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    path = cache_path(experiment.name, cache_dir)
    if fresh and path.exists():
        path.unlink()
    done = _start_cache(path, experiment)
    finished = {(r["config"], r["seed"]) for r in done}
    # seed by seed across configs: an interrupted run leaves the configs equally seeded
    order = sorted(experiment.pairs(), key=lambda pair: experiment.seeds.index(pair[1]))
    todo = [(experiment, c, s) for c, s in order if (c, s) not in finished]
    bar = tqdm(total=len(experiment.pairs()), initial=len(finished), desc=experiment.name,
               disable=not progress, dynamic_ncols=True, unit="run")
    with open(path, "a") as handle:
        if workers == 1 or len(todo) <= 1:
            results = (_worker_run(job) for job in todo)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(
                min(workers, len(todo)), initializer=_worker_init)
            results = pool.imap_unordered(_worker_run, todo)
        completed = False
        try:
            for record in results:
                _write_line(handle, record)
                bar.update(1)
            completed = True
        finally:
            if pool is not None:
                # done: let the workers exit on their own (terminating them leaks a
                # semaphore); interrupted: stop them now, the finished rows are written
                pool.close() if completed else pool.terminate()
                pool.join()
            bar.close()
    return load_results(experiment.name, cache_dir)


# ---- reproduction -----------------------------------------------------------------
def reproduce_one(name: str, cache_dir: Path | str | None = None,
                  pair: tuple[str, int] | None = None) -> list[str]:
    """Re-run one (config, seed) pair of a cached experiment (default: the first config's
    first seed) and compare every stored number except the wall clock. Returns the
    differences found, as readable lines (empty when the numbers are the same)."""
    provenance_, records = read_cache(cache_path(name, cache_dir))
    spec = provenance_["experiment"]
    experiment = Experiment(name=spec["name"], configs=spec["configs"], seeds=spec["seeds"],
                            base=spec["base"], metrics=spec["metrics"])
    pair = (next(iter(spec["configs"])), spec["seeds"][0]) if pair is None else tuple(pair)
    cached = [r for r in records if (r["config"], r["seed"]) == pair]
    if not cached:
        raise ValueError(f"pair: {pair!r} is not in the cache of {name!r}")
    fresh = run_one(experiment, *pair)
    return compare_records(cached[0], fresh)


def compare_records(cached: dict, fresh: dict) -> list[str]:
    """The differences between two records of one run (wall-clock metrics ignored)."""
    problems = []
    for metric, values in cached["metrics"].items():
        if metric in WALL_CLOCK:
            continue
        other = fresh["metrics"].get(metric)
        if other is None:
            problems.append(f"{metric}: missing in the new run")
        elif len(other) != len(values):
            problems.append(f"{metric}: {len(values)} steps cached, {len(other)} now")
        else:
            for step, (a, b) in enumerate(zip(values, other)):
                if a != b:
                    problems.append(f"{metric} at step {step}: cached {a}, now {b}")
                    break
    return problems
