"""``rlviz diagnose``: read a real TRL or verl training log and say which numbers are normal.

Two log formats, with the metric names of the pinned versions:

* TRL 1.16.0: ``trainer_state.json`` written by the HF ``Trainer``; its ``log_history`` is a list
  of dicts, one per logging step, with ``"step"``, the Trainer's ``"loss"``, ``"grad_norm"``,
  ``"learning_rate"`` and GRPOTrainer's ``_metrics`` (``trl/trainer/grpo_trainer.py``):
  ``"reward"``, ``"reward_std"``, ``"frac_reward_zero_std"``, ``"kl"`` (only when beta != 0),
  ``"entropy"``, ``"clip_ratio/region_mean"``, ``"completions/clipped_ratio"``,
  ``"completions/mean_length"``, ``"sampling/importance_sampling_ratio/{min,max}"``.
* verl 0.9.1: JSON lines of its ``file`` logger (``verl/utils/tracking.py::FileLogger``:
  ``{"step": step, "data": {...}}`` per line; a flat ``{"step": ..., "actor/pg_loss": ...}`` line
  is read too), with the names of ``verl/trainer/ppo/metric_utils.py`` and the actor
  (``verl/workers/utils/losses.py``, prefixed ``actor/`` by ``ray_trainer.py``):
  ``"actor/pg_loss"``, ``"actor/pg_clipfrac"``, ``"actor/ppo_kl"``, ``"actor/kl_loss"``,
  ``"actor/entropy"``, ``"actor/grad_norm"``, ``"critic/score/mean"``,
  ``"critic/advantages/{min,max}"``, ``"response_length/mean"``, ``"response_length/clip_ratio"``.

``diagnose(path_or_dict)`` returns a ``Diagnosis`` (findings as data); ``report(diagnosis)``
formats it. Bad input raises ``LogFormatError`` (a ``ValueError``) saying what was expected.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

NOTEBOOKS = {
    "zero_loss": ("notebooks/01_why_the_loss_is_zero.ipynb",
                  "The key picture: a loss of zero next to a gradient that is not"),
    "kl_term": ("notebooks/01_why_the_loss_is_zero.ipynb", "The GRPO side: the KL term"),
    "clipping": ("notebooks/03_ratio_clipping.ipynb", "On a real batch: several inner epochs"),
    "clip_higher": ("notebooks/03_ratio_clipping.ipynb", "Clip-higher and dual clip"),
    "kl_beta": ("notebooks/04_kl_estimation.ipynb", "6. The effect of β: reward against KL"),
    "groups": ("notebooks/05_group_normalization.ipynb", "1. Group advantages, step by step"),
    "length": ("notebooks/05_group_normalization.ipynb", "3. Aggregation and the length bias"),
    "not_progress": ("notebooks/06_ppo_vs_grpo.ipynb", "3. The loss value is not a progress measure"),
    "off_policy": ("notebooks/07_off_policy.ipynb", ""),
}

# canonical name -> (TRL 1.16.0 keys, verl 0.9.1 keys), first present key wins
METRICS = {
    "loss": (("loss",), ("actor/pg_loss",)),
    "clip_ratio": (("clip_ratio/region_mean",), ("actor/pg_clipfrac",)),
    "reward": (("reward",), ("critic/score/mean", "critic/rewards/mean")),
    "grad_norm": (("grad_norm",), ("actor/grad_norm",)),
    "frac_reward_zero_std": (("frac_reward_zero_std",), ()),
    "kl": (("kl",), ("actor/kl_loss", "actor/reward_kl_penalty")),
    "truncated": (("completions/clipped_ratio",), ("response_length/clip_ratio",)),
    "entropy": (("entropy",), ("actor/entropy",)),
    "length": (("completions/mean_length",), ("response_length/mean",)),
    "adv_min": ((), ("critic/advantages/min",)),
    "adv_max": ((), ("critic/advantages/max",)),
    "is_ratio_min": (("sampling/importance_sampling_ratio/min",), ()),
    "is_ratio_max": (("sampling/importance_sampling_ratio/max",), ()),
}
SOURCES = ("trl", "verl")


class LogFormatError(ValueError):
    """The log could not be read as a TRL trainer_state.json or a verl metrics JSON-lines log."""


@dataclass(frozen=True)
class Finding:
    """One pattern seen in the log.

    pattern:  identifier (``"zero_loss"``, ``"clip_ratio_zero"``, ...)
    verdict:  ``"expected"``, ``"problem"`` or ``"check"`` (depends on a setting the log
              does not record)
    title:    one line; ``seen``: the steps and values; ``why``: the explanation
    notebook: (file, section) that explains it; ``steps``/``values``: the evidence as data
    """

    pattern: str
    verdict: str
    title: str
    seen: str
    why: str
    notebook: tuple[str, str]
    steps: tuple[int, ...] = ()
    values: tuple[float, ...] = ()


@dataclass
class TrainingLog:
    """A log reduced to canonical series: name -> [(step, value), ...] in step order."""

    source: str
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # canonical name -> key in the log
    num_records: int = 0

    def get(self, name: str) -> list[tuple[int, float]]:
        return self.series.get(name, [])


@dataclass
class Diagnosis:
    source: str
    num_records: int
    findings: list[Finding]
    not_checked: list[str]  # "pattern: the metric it needs is not in the log"

    def patterns(self) -> list[str]:
        return [f.pattern for f in self.findings]


# ------------------------------------------------------------------------------ reading

def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _records_from_trl(obj: dict) -> list[tuple[int, dict]]:
    history = obj.get("log_history")
    if not isinstance(history, list):
        raise LogFormatError("a TRL trainer_state.json needs a 'log_history' list; "
                             f"its 'log_history' is {type(history).__name__}")
    records = []
    for entry in history:
        if isinstance(entry, dict) and _number(entry.get("step")) is not None:
            records.append((int(entry["step"]), entry))
    return records


def _records_from_verl(lines: list) -> list[tuple[int, dict]]:
    records = []
    for entry in lines:
        if not isinstance(entry, dict) or _number(entry.get("step")) is None:
            continue
        data = entry.get("data") if isinstance(entry.get("data"), dict) else entry
        records.append((int(entry["step"]), data))
    return records


def _parse_text(text: str, name: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    lines = []
    rows = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    for position, (number, line) in enumerate(rows):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as error:
            if lines and position == len(rows) - 1:
                break  # a last line cut short: a log still being written; keep the rest
            raise LogFormatError(
                f"{name}: not JSON and not JSON lines (line {number}: {error.msg}). Expected a "
                "TRL trainer_state.json or a verl metrics log (one JSON object per line)") from None
    return lines


def load_log(source) -> TrainingLog:
    """Read a log: a path, a parsed ``trainer_state.json`` dict, or a list of verl records."""
    name = "log"
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise LogFormatError(f"cannot read {name!r}: {error.strerror}") from None
        if not text.strip():
            raise LogFormatError(f"{name}: the file is empty")
        obj = _parse_text(text, name)
    else:
        obj = source
    if isinstance(obj, dict) and "log_history" in obj:
        kind, records = "trl", _records_from_trl(obj)
    elif isinstance(obj, dict) and _number(obj.get("step")) is not None:
        kind, records = "verl", _records_from_verl([obj])
    elif isinstance(obj, list) and any(isinstance(e, dict) for e in obj):
        kind, records = "verl", _records_from_verl(obj)
    else:
        raise LogFormatError(
            f"{name}: unknown log format ({type(obj).__name__}). Expected a TRL "
            "trainer_state.json (an object with 'log_history') or a verl metrics log (JSON "
            "lines, each {'step': N, 'data': {metric: value}} as verl's file logger writes)")
    if not records:
        raise LogFormatError(f"{name}: the {kind} log has no record with a 'step'")

    index = SOURCES.index(kind)
    known = {key for keys in METRICS.values() for key in keys[index]}
    metric_steps = {step for step, data in records if known & set(data)}
    log = TrainingLog(source=kind, num_records=len(metric_steps))
    for canonical, keys in METRICS.items():
        for key in keys[index]:
            points = [(step, _number(data.get(key))) for step, data in records]
            points = [(s, v) for s, v in points if v is not None]
            if points:
                log.series[canonical] = sorted(points)
                log.keys[canonical] = key
                break
    if kind == "verl" and "adv_min" in log.series and "adv_max" in log.series:
        # verl logs no share of zero-std groups; all advantages 0 means every group was flat
        lo, hi = dict(log.series["adv_min"]), dict(log.series["adv_max"])
        log.series["frac_reward_zero_std"] = [
            (s, 1.0 if lo[s] == 0.0 and hi[s] == 0.0 else math.nan) for s in sorted(lo) if s in hi]
        log.keys["frac_reward_zero_std"] = "critic/advantages/min and /max both 0"
    if not any(name in log.series for name in ("loss", "reward", "clip_ratio", "grad_norm")):
        wanted = [k for name in ("loss", "reward", "clip_ratio", "grad_norm")
                  for k in METRICS[name][index]]
        raise LogFormatError(f"{name}: a {kind} log, but none of the metrics {wanted} is in it")
    return log


# ------------------------------------------------------------------------------ checks

def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value:.3g}" if value != 0 else "0"


def _show(points, key: str, limit: int = 6) -> str:
    shown = ", ".join(f"{s}: {_fmt(v)}" for s, v in points[:limit])
    more = f", ... ({len(points)} steps)" if len(points) > limit else ""
    return f"{key} at steps {{{shown}{more}}}"


def _thirds(values: list[float]) -> tuple[float, float]:
    n = max(len(values) // 3, 1)
    return sum(values[:n]) / n, sum(values[-n:]) / n


def _pearson(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def _finding(pattern, verdict, title, seen, why, notebook, points) -> Finding:
    return Finding(pattern, verdict, title, seen, why, NOTEBOOKS[notebook],
                   tuple(s for s, _ in points), tuple(v for _, v in points))


def _check_non_finite(log: TrainingLog, num_iterations):
    bad = [(name, s, v) for name, pts in log.series.items() if name != "frac_reward_zero_std"
           for s, v in pts if not math.isfinite(v)]
    if not bad:
        return None
    name, step, value = bad[0]
    return Finding("non_finite", "problem", "NaN or inf in the logged metrics",
                   f"{log.keys[name]} = {value} at step {step} ({len(bad)} values in all)",
                   "A non-finite loss or gradient stops learning (the optimizer step turns the "
                   "weights into NaN). Common causes: a log-ratio exp() without clamp, a std of "
                   "0 divided by without eps, bf16 overflow.", ("", ""),
                   tuple(s for _, s, _ in bad), tuple(v for _, _, v in bad))


def _check_zero_loss(log, num_iterations):
    loss = log.get("loss")
    if len(loss) < 2:
        return None
    small = [(s, v) for s, v in loss if abs(v) < 1e-3]
    if len(small) < 0.8 * len(loss):
        return None
    verdict = "problem" if num_iterations and num_iterations > 1 else "expected"
    return _finding(
        "zero_loss", verdict, "the loss is ~0 (|loss| < 1e-3) at most steps",
        _show(small, log.keys["loss"]) + f"; {len(small)} of {len(loss)} steps",
        "On-policy (num_iterations=1, one optimizer step per generation) the ratio rho is "
        "exactly 1 and the group advantages sum to 0 within each group, so the surrogate's "
        "VALUE is ~0 while its GRADIENT is not; with beta > 0 the value is beta * KL, small. "
        "Expected then. With num_iterations > 1 a loss that stays at 0 is suspicious.",
        "zero_loss", small)


def _check_clip_zero(log, num_iterations):
    clip = log.get("clip_ratio")
    if len(clip) < 2 or max(abs(v) for _, v in clip) > 0.0:
        return None
    verdict = "check" if num_iterations is None else ("problem" if num_iterations > 1 else "expected")
    return _finding(
        "clip_ratio_zero", verdict, "the clip ratio is 0 at every step",
        _show(clip, log.keys["clip_ratio"]),
        "The clip only acts when rho leaves [1 - eps_low, 1 + eps_high]. On-policy "
        "(TRL: num_iterations=1 and steps_per_generation == gradient_accumulation_steps; "
        "verl: one PPO epoch and ppo_mini_batch_size == train_batch_size; mini-batches per "
        "rollout in notebooks/07_off_policy.ipynb) rho = 1 at every token, so 0 is expected. With sample "
        "reuse it should become > 0 after the first update; if it does not, the clip never "
        "binds (eps too wide or the lr too small).",
        "clipping", clip)


def _check_clip_high(log, num_iterations):
    clip = log.get("clip_ratio")
    high = [(s, v) for s, v in clip if v > 0.2]
    if not clip or len(high) < max(2, len(clip) // 4):
        return None
    return _finding(
        "clip_ratio_high", "problem", "more than 20% of the tokens are clipped",
        _show(high, log.keys["clip_ratio"]),
        "A clipped token gets no gradient. A large share means the policy moved far from the "
        "sampling policy within one batch: too many reuse steps, a large learning rate, or a "
        "rollout engine whose probabilities differ from the trainer's (off-policy).",
        "off_policy", high)


def _check_loss_rises_with_reward(log, num_iterations):
    loss, reward = dict(log.get("loss")), dict(log.get("reward"))
    steps = sorted(set(loss) & set(reward))
    if len(steps) < 6:
        return None
    ls, rs = [loss[s] for s in steps], [reward[s] for s in steps]
    corr = _pearson(ls, rs)
    (l0, l1), (r0, r1) = _thirds(ls), _thirds(rs)
    if not (corr > 0.5 and l1 > l0 and r1 > r0):
        return None
    return _finding(
        "loss_rises_with_reward", "expected", "the loss rises while the reward rises",
        f"{log.keys['loss']} {_fmt(l0)} -> {_fmt(l1)} and {log.keys['reward']} {_fmt(r0)} -> "
        f"{_fmt(r1)} (first third -> last third), correlation {corr:.2f}",
        "The logged loss is not a progress measure. On-policy the surrogate is ~0 at every "
        "step, so what is left is beta * KL, which grows as the policy leaves the reference "
        "- that is, as it learns. With token-level aggregation the length of the responses "
        "also moves the value.",
        "not_progress", [(s, loss[s]) for s in steps])


def _check_no_signal(log, num_iterations):
    grad, flat = dict(log.get("grad_norm")), dict(log.get("frac_reward_zero_std"))
    steps = sorted(set(grad) & set(flat))
    dead = [(s, grad[s]) for s in steps if flat[s] >= 0.999 and abs(grad[s]) < 1e-8]
    if not dead:
        return None
    return _finding(
        "no_learning_signal", "problem",
        "grad_norm is 0 at steps where every group's rewards are equal",
        _show(dead, log.keys["grad_norm"]) + f"; {log.keys['frac_reward_zero_std']} = 1 there",
        "When all G responses to a prompt get the same reward, their group advantages are all 0 "
        "and the prompt gives no policy gradient; when that holds for every prompt (and beta = "
        "0, or the policy still equals the reference) the gradient is exactly 0 and the step "
        "is wasted. Remedies: prompts of the right difficulty, a larger G, dynamic sampling "
        "(DAPO) that drops flat groups.",
        "groups", dead)


def _check_many_flat_groups(log, num_iterations):
    flat = [(s, v) for s, v in log.get("frac_reward_zero_std") if not math.isnan(v)]
    if len(flat) < 2:
        return None
    mean = sum(v for _, v in flat) / len(flat)
    if mean < 0.5 or all(v >= 0.999 for _, v in flat):
        return None
    return _finding(
        "many_flat_groups", "problem", f"on average {mean:.0%} of the groups have equal rewards",
        _show(flat, log.keys["frac_reward_zero_std"]),
        "Those groups add samples but no signal, and shrink the effective batch. The tasks are "
        "too easy or too hard for the policy, or G is too small.",
        "groups", flat)


def _check_kl_rising(log, num_iterations):
    kl = log.get("kl")
    if len(kl) < 4:
        return None
    values = [v for _, v in kl]
    k0, k1 = _thirds(values)
    if not (k1 > 2 * max(k0, 1e-6) and k1 > 1e-3):
        return None
    verdict = "problem" if k1 > 1.0 else "check"
    return _finding(
        "kl_rising", verdict, "the KL to the reference keeps rising",
        f"{log.keys['kl']} {_fmt(k0)} -> {_fmt(k1)} (first third -> last third); "
        + _show(kl[-3:], log.keys["kl"]),
        "Some growth is how learning looks: the policy moves away from the reference. A KL "
        "that grows without levelling off means beta is too small for the reward's pull (or 0); "
        "above ~1 nat per token the samples are far from anything the reference would write.",
        "kl_beta", kl)


def _check_truncated(log, num_iterations):
    trunc = log.get("truncated")
    if not trunc:
        return None
    _, late = _thirds([v for _, v in trunc])
    if late < 0.1:
        return None
    hits = [(s, v) for s, v in trunc if v >= 0.1]
    return _finding(
        "truncated", "problem", f"{late:.0%} of the completions hit the length limit",
        _show(hits, log.keys["truncated"]),
        "A truncated completion is scored without its end, usually as a failure, and the "
        "aggregation weighs its many tokens: the policy learns about length, not the task. "
        "Raise the generation budget, or drop truncated completions from the loss (TRL "
        "mask_truncated_completions=True) / shape the overlong reward (DAPO).",
        "length", hits)


def _check_entropy_collapse(log, num_iterations):
    ent = log.get("entropy")
    if len(ent) < 4:
        return None
    e_first, e_last = ent[0][1], ent[-1][1]
    if not (e_first > 0 and e_last < 0.2 * e_first):
        return None
    return _finding(
        "entropy_collapse", "problem", "the token entropy collapsed",
        f"{log.keys['entropy']} {_fmt(e_first)} at step {ent[0][0]} -> {_fmt(e_last)} at step "
        f"{ent[-1][0]} (below 20% of its start)",
        "A policy that always writes the same tokens stops exploring: groups become flat and "
        "the gradient dies. The symmetric clip lets low-probability tokens rise only slowly; "
        "clip-higher (DAPO, eps_high = 0.28) or an entropy bonus counter it.",
        "clip_higher", ent)


def _check_importance_ratio(log, num_iterations):
    lo, hi = dict(log.get("is_ratio_min")), dict(log.get("is_ratio_max"))
    far = [(s, hi[s]) for s in sorted(hi) if hi[s] > 2.0 or lo.get(s, 1.0) < 0.5]
    if not far:
        return None
    return _finding(
        "rollout_mismatch", "check",
        "the rollout engine's probabilities differ from the trainer's",
        _show(far, log.keys["is_ratio_max"]),
        "TRL logs the ratio pi_trainer / pi_rollout when generation runs in vLLM. Far from 1, "
        "the update is off-policy even at num_iterations=1; importance-sampling correction "
        "(TRL vllm_importance_sampling_correction) caps what it can.",
        "off_policy", far)


CHECKS = (
    _check_non_finite, _check_zero_loss, _check_clip_zero, _check_clip_high,
    _check_loss_rises_with_reward, _check_no_signal, _check_many_flat_groups,
    _check_kl_rising, _check_truncated, _check_entropy_collapse, _check_importance_ratio,
)
NEEDS = {
    "zero_loss": ("loss",), "clip_ratio": ("clip_ratio",),
    "loss_rises_with_reward": ("loss", "reward"),
    "no_learning_signal": ("grad_norm", "frac_reward_zero_std"),
    "kl_rising": ("kl",), "truncated": ("truncated",), "entropy_collapse": ("entropy",),
}


def diagnose(source, num_iterations: int | None = None) -> Diagnosis:
    """Findings for a log (path, parsed ``trainer_state.json`` dict, or list of verl records).

    ``num_iterations``: TRL's ``num_iterations`` (verl: ``ppo_epochs``), when known; the
    logs do not record it, and some verdicts depend on it.
    """
    if num_iterations is not None and (isinstance(num_iterations, bool)
                                       or not isinstance(num_iterations, int)
                                       or num_iterations < 1):
        raise ValueError(f"num_iterations must be a positive integer or None, got {num_iterations!r}")
    log = load_log(source)
    findings = [f for check in CHECKS if (f := check(log, num_iterations)) is not None]
    index = SOURCES.index(log.source)
    not_checked = []
    for pattern, names in NEEDS.items():
        missing = [n for n in names if n not in log.series]
        if missing:
            keys = [k for n in missing for k in METRICS[n][index]] or [f"({n}: not logged)"
                                                                      for n in missing]
            not_checked.append(f"{pattern}: needs {', '.join(keys)}")
    return Diagnosis(log.source, log.num_records, findings, not_checked)


def report(diagnosis: Diagnosis) -> str:
    """The findings as text: per pattern what is seen, the verdict, why, and where to read."""
    head = (f"{diagnosis.source} log, {diagnosis.num_records} logged steps: "
            f"{len(diagnosis.findings)} pattern(s) found")
    lines = [head, ""]
    for f in diagnosis.findings:
        lines.append(f"[{f.verdict}] {f.title}")
        lines.append(f"  seen: {f.seen}")
        lines.append(f"  why:  {f.why}")
        if f.notebook[0]:
            section = f', section "{f.notebook[1]}"' if f.notebook[1] else ""
            lines.append(f"  read: {f.notebook[0]}{section}")
        lines.append("")
    if not diagnosis.findings:
        lines += ["No pattern found.", ""]
    if diagnosis.not_checked:
        lines.append("Not checked (metric not in the log):")
        lines += [f"  {item}" for item in diagnosis.not_checked]
    return "\n".join(lines).rstrip() + "\n"
