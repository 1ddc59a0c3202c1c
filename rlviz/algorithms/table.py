"""The loss table: every key of ``LOSS_FN_REGISTRY`` with its formula, defaults and sources,
generated from the specs (the README, docs/losses.md and the notebooks print it)."""

from __future__ import annotations

from .hparams import HParams
from .library import TRL_VERSION, VERL_VERSION
from .registry import LOSS_FN_REGISTRY, AlgoSpec

COLUMNS = ("algo", "formula", "advantages", "kl", "aggregation", "defaults", "paper", "trl",
           "verl")

ADVANTAGE_TEXT = {
    "batch-centred": "r - mean(r) over the batch",
    "gae": "GAE (gamma, lam), whitened",
    "group": {"group": "(r - group mean) / (group std + eps)",
              "batch": "(r - group mean) / (batch std + eps)",
              "none": "r - group mean"},
}


def spec_defaults(spec: AlgoSpec) -> HParams:
    """The hyper-parameters of ``spec`` with no ``Config`` override."""
    return HParams(algo=spec.name, advantage=spec.advantage, kl_in=spec.kl_in,
                   needs_critic=spec.needs_critic, **spec.defaults)


def _advantages(spec: AlgoSpec, hp: HParams) -> str:
    text = ADVANTAGE_TEXT.get(spec.advantage, spec.advantage)
    return text[hp.adv_scale] if isinstance(text, dict) else text


def _kl(spec: AlgoSpec, hp: HParams) -> str:
    if spec.kl_in == "none":
        return "none (beta = 0)"
    if spec.kl_in == "loss":
        return f"+ beta * {hp.kl_estimator} per token of the loss, beta = {hp.beta:g}"
    return f"- beta * {hp.kl_estimator} in the per-token reward, beta = {hp.beta:g}"


def _defaults(spec: AlgoSpec, hp: HParams) -> str:
    parts = [f"eps {hp.eps_low:g} / {hp.eps_high:g}"]
    if hp.ratio_level == "sequence":
        parts.append("sequence ratio")
    if hp.dual_clip is not None:
        parts.append(f"dual clip {hp.dual_clip:g}")
    if spec.needs_critic:
        parts.append(f"gamma {hp.gamma:g}, lam {hp.lam:g}, vf clip {hp.vf_clip_range:g}, "
                     "vf_coef / ent_coef from Config")
    if hp.loss_agg_mode == "seq-mean-token-sum-norm":
        parts.append("max_len = T unless set")
    return ", ".join(parts)


def _library(recipe) -> str:
    if recipe is None:
        return "-"
    text = recipe.text()
    if recipe.differences:
        text += " (differs: " + "; ".join(recipe.differences) + ")"
    return text


def loss_table() -> list[dict]:
    """One row per registry key (dicts with the keys of ``COLUMNS``), in registry order."""
    rows = []
    for spec in LOSS_FN_REGISTRY.values():
        hp = spec_defaults(spec)
        row = {
            "algo": spec.name,
            "formula": spec.summary,
            "advantages": _advantages(spec, hp),
            "kl": _kl(spec, hp),
            "aggregation": hp.loss_agg_mode,
            "defaults": _defaults(spec, hp),
            "paper": spec.paper,
            "trl": _library(spec.trl),
            "verl": _library(spec.verl),
        }
        row.update(spec.table_notes)
        rows.append(row)
    return rows


def loss_table_markdown(columns: tuple[str, ...] = COLUMNS) -> str:
    """``loss_table()`` as a GitHub markdown table (for the README, docs and notebooks)."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        valid = ", ".join(repr(c) for c in COLUMNS)
        raise ValueError(f"Unknown columns: {unknown}. Valid values: {valid}")

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in loss_table():
        cells = [f"`{row['algo']}`" if c == "algo" else cell(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _short(recipe) -> str:
    """The settings of a recipe with verl's actor prefix dropped, as inline code."""
    if recipe is None:
        return "–"
    if not recipe.supported:
        return "not available (see docs/losses.md)"
    text = recipe.text().replace("actor_rollout_ref.actor.", "actor.")
    return f"`{text}`" + (" *" if recipe.differences else "")


def readme_table_markdown() -> str:
    """The compact table of the README: one row per algorithm, the library settings in
    short (an asterisk: the library still differs, see ``library_table_markdown``)."""
    lines = ["| `cfg.algo` | what it is | advantages | KL | aggregation | TRL "
             f"{TRL_VERSION} `GRPOConfig` | verl {VERL_VERSION} overrides |",
             "|---|---|---|---|---|---|---|"]
    for row, spec in zip(loss_table(), LOSS_FN_REGISTRY.values()):
        cells = [f"`{spec.name}`", spec.summary, row["advantages"], row["kl"],
                 row["aggregation"], _short(spec.trl), _short(spec.verl)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def library_table_markdown() -> str:
    """Per algorithm and library: the exact settings and what still differs."""
    lines = ["| `cfg.algo` | library | settings | what still differs |", "|---|---|---|---|"]
    for spec in LOSS_FN_REGISTRY.values():
        for recipe in (spec.trl, spec.verl):
            if recipe is None:
                continue
            settings = f"`{recipe.text()}`" if recipe.supported else "not available"
            differs = "<br>".join(recipe.differences) or "nothing known"
            lines.append(f"| `{spec.name}` | {recipe.library} {recipe.version} | {settings} "
                         f"| {differs} |".replace("\n", " "))
    return "\n".join(lines)


# Generated regions of the docs: file -> {region name: the function that writes it}
GENERATED = {
    "README.md": {"readme-table": readme_table_markdown},
    "docs/losses.md": {"loss-table": loss_table_markdown, "library-table": library_table_markdown},
}


def regenerate(text: str, name: str, content: str) -> str:
    """``text`` with the region between ``<!-- name:start ... -->`` and ``<!-- name:end -->``
    replaced by ``content`` (a ``ValueError`` if the markers are missing)."""
    start = text.find(f"<!-- {name}:start")
    end = text.find(f"<!-- {name}:end -->")
    if start < 0 or end < 0:
        raise ValueError(f"markers <!-- {name}:start --> / <!-- {name}:end --> not found")
    head = text.index("-->", start) + len("-->")
    return text[:head] + "\n" + content + "\n" + text[end:]


def write_generated(root, check: bool = False) -> list[str]:
    """Rewrite the generated regions under ``root`` (or, with ``check``, only list the files
    whose regions are stale). Returns the files that changed (or would)."""
    import pathlib

    stale = []
    for relative, regions in GENERATED.items():
        path = pathlib.Path(root) / relative
        text = original = path.read_text(encoding="utf-8")
        for name, make in regions.items():
            text = regenerate(text, name, make())
        if text != original:
            stale.append(relative)
            if not check:
                path.write_text(text, encoding="utf-8")
    return stale
