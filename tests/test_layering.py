"""The layer order of CONTRIBUTING.md: each part of rlviz imports only from the layers below
it (or its own layer, without cycles). Every import statement counts, also those inside
functions, so a "local import" cannot hide an upward dependency."""

import ast
import collections
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "rlviz"

# part of rlviz (the first name after "rlviz.") -> its layer; lower layers know nothing above
LAYERS = {
    "losses": 0, "formatting": 0, "threads": 0,  # the math, utilities
    "algorithms": 1,  # dispatch, defaults, library settings
    "config": 2, "masks": 2, "tasks": 2,
    "models": 3, "causal_policy": 3, "demo_training": 3, "rollout": 3, "rollout_engine": 3,
    "trainer": 4, "distributed": 4,
    "experiments": 5, "plots": 5, "export": 5, "diagnose": 5, "trl_bridge": 5,
    "exercises": 6, "widgets": 6, "cli": 6,
    "__init__": 7, "__main__": 7,
}


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_edges(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    """module -> the rlviz modules it imports (absolute names)."""
    edges = collections.defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    targets = [".".join(base + ([node.module] if node.module else []))]
                else:
                    targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            edges[module] |= {t for t in targets if t == "rlviz" or t.startswith("rlviz.")}
    return edges


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def layering_problems(edges: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Every upward import, unknown part and import cycle, as readable lines."""
    problems = []
    for module, targets in sorted(edges.items()):
        if part(module) not in layers:
            problems.append(f"{module}: part {part(module)!r} has no layer in LAYERS")
            continue
        for target in sorted(targets):
            if part(target) not in layers:
                problems.append(f"{module} imports {target}: part {part(target)!r} has no layer")
            elif layers[part(target)] > layers[part(module)]:
                problems.append(f"{module} (layer {layers[part(module)]}) imports {target} "
                                f"(layer {layers[part(target)]}): upward")
    # cycles between modules: depth-first search with colours
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            target = target if target in edges else target.rsplit(".", 1)[0]  # a name import
            if target == module or target not in edges:
                continue
            if state.get(target) == "open":
                problems.append("import cycle: " + " -> ".join(stack[stack.index(target):]
                                                               + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    return problems


def test_rlviz_respects_the_layer_order_and_has_no_cycle():
    assert layering_problems(import_edges(), LAYERS) == []


def test_losses_import_nothing_else_from_rlviz():
    for module, targets in import_edges().items():
        if part(module) == "losses":
            assert all(part(t) == "losses" for t in targets), (module, targets)


@pytest.mark.parametrize("edges, expected", [
    ({"rlviz.losses.kl": {"rlviz.config"}, "rlviz.config": set()}, "upward"),
    ({"rlviz.config": {"rlviz.masks"}, "rlviz.masks": {"rlviz.config"}}, "import cycle"),
    ({"rlviz.newthing": set()}, "has no layer"),
])
def test_the_check_fails_on_an_upward_import_a_cycle_and_an_unknown_part(edges, expected):
    problems = layering_problems(edges, LAYERS)
    assert any(expected in line for line in problems), problems


def test_the_check_reads_local_imports(tmp_path):
    package = tmp_path / "rlviz"
    (package / "losses").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "losses" / "__init__.py").write_text("")
    (package / "losses" / "kl.py").write_text("def f():\n    from ..config import Config\n")
    edges = import_edges(package)
    assert "rlviz.config" in edges["rlviz.losses.kl"]
    assert any("upward" in line for line in layering_problems(edges, LAYERS))
