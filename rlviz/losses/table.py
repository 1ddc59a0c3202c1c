"""The loss table: every key of ``LOSS_FN_REGISTRY`` with its formula, defaults and sources."""

from __future__ import annotations

from .registry import LOSS_FN_REGISTRY

COLUMNS = ("algo", "formula", "advantages", "kl", "aggregation", "defaults", "paper", "trl",
           "verl")


def _advantages(spec) -> str:
    if spec.advantage == "batch-centred":
        return "r - mean(r) over the batch"
    if spec.advantage == "gae":
        return "GAE (gamma, lam), whitened"
    scale = spec.defaults.get("adv_scale")
    return {"group": "(r - group mean) / (group std + eps)",
            "batch": "(r - group mean) / (batch std + eps)",
            "none": "r - group mean"}[scale]


def _kl(spec) -> str:
    hp = spec.defaults
    if spec.name == "grpo":
        return "beta * k1 / L per token of the loss (one 1/L too many), beta = cfg.beta_kl"
    if spec.kl_in == "none":
        return "none (beta = 0)"
    if spec.kl_in == "loss":
        return f"+ beta * {hp['kl_estimator']} per token of the loss, beta = {hp['beta']:g}"
    return f"- beta * {hp['kl_estimator']} in the per-token reward, beta = {hp['beta']:g}"


def _defaults(spec) -> str:
    hp = spec.defaults
    if spec.is_demo:
        return "eps = cfg.clip_range (0.2)"
    parts = [f"eps {hp['eps_low']:g} / {hp['eps_high']:g}"]
    if hp.get("ratio_level") == "sequence":
        parts.append("sequence ratio")
    if hp.get("dual_clip") is not None:
        parts.append(f"dual clip {hp['dual_clip']:g}")
    if spec.needs_critic:
        parts.append(f"gamma {hp['gamma']:g}, lam {hp['lam']:g}, vf clip "
                     f"{hp['vf_clip_range']:g}, vf_coef / ent_coef from Config")
    if hp["loss_agg_mode"] == "seq-mean-token-sum-norm":
        parts.append("max_len = T unless set")
    return ", ".join(parts)


def loss_table() -> list[dict]:
    """One row per registry key (dicts with the keys of ``COLUMNS``), in registry order."""
    rows = []
    for spec in LOSS_FN_REGISTRY.values():
        rows.append({
            "algo": spec.name,
            "formula": spec.summary,
            "advantages": _advantages(spec),
            "kl": _kl(spec),
            "aggregation": spec.defaults.get("loss_agg_mode", "") + (
                " (the demo's: sum over prompts / G)" if spec.name == "grpo" else ""),
            "defaults": _defaults(spec),
            "paper": spec.paper,
            "trl": spec.trl,
            "verl": spec.verl,
        })
    return rows


def loss_table_markdown(columns: tuple[str, ...] = COLUMNS) -> str:
    """``loss_table()`` as a GitHub markdown table (for the README, docs and notebooks)."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        valid = ", ".join(repr(c) for c in COLUMNS)
        raise ValueError(f"Unknown columns: {unknown}. Valid values: {valid}")
    rows = loss_table()

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        name = f"`{row['algo']}`"
        cells = [name if c == "algo" else cell(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
