"""The shape of the code, read with ast: no import cycle between tenku's modules, no import from a lower layer
to a higher one, the environment read only at the edges. See docs/architecture.md for the layers."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "tenku"

# Lower layers first; a module may import its own layer and those below it, never one above.
LAYERS = [
    {"tenku", "errors", "config", "geometry", "progress", "seeds", "media"},
    {"flow", "models", "safety"},
    {"data"},
    {"world"},
    {"pipeline"},
    {"eval", "train"},
    {"serve", "testing"},
    {"commands", "cli", "__main__"},
]
# the exceptions, each with its reason
ALLOWED = {
    # the world's prompt expander describes given frames with the evaluation's object parser
    ("tenku.world.expand", "tenku.eval.scene"),
}
# cycles still to break, each with its reason
KNOWN_CYCLES: list[list[str]] = []
# modules that may read the environment: the edges and the one progress switch (and launchers that pass
# the environment on to the processes they start)
ENV_READERS = {
    "tenku.cli", "tenku.serve.settings", "tenku.progress", "tenku.safety.policy", "tenku.commands._shared",
    "tenku.commands.generate", "tenku.commands.data", "tenku.serve.launch", "tenku.serve.server",
    "tenku.train.parallel",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in SRC.rglob("*.py"):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The tenku modules ``name`` imports anywhere (top level or inside functions). ``from pkg import mod``
    counts as importing ``pkg.mod`` only."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            out.update(subs if len(subs) == len(node.names) else [base, *subs])
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "tenku"
    return next(i for i, names in enumerate(LAYERS) if top in names)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_package_has_a_layer():
    assert all(_layer(m) is not None for m in MODULES)


def test_no_import_cycle():
    cycles = [c for c in _cycles(GRAPH) if c not in KNOWN_CYCLES]
    assert cycles == [], "import cycles between tenku modules"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = sorted(f"{a} -> {b}" for a, bs in GRAPH.items() for b in bs
                    if _layer(b) > _layer(a) and (a, b) not in ALLOWED)
    assert upward == [], "imports that reach up a layer (see LAYERS in this file)"


@pytest.mark.parametrize("low", ["models", "flow", "data"])
def test_models_flow_and_data_know_nothing_of_generation_serving_or_world_captions(low):
    higher = ("pipeline", "serve", "world", "commands")
    bad = sorted(f"{a} -> {b}" for a, bs in GRAPH.items() if a.startswith(f"tenku.{low}")
                 for b in bs if b.partition(".")[2].split(".")[0] in higher)
    assert bad == []


def test_the_generic_pipeline_does_not_import_the_synthetic_world():
    assert not any(b.startswith("tenku.world") for a, bs in GRAPH.items() if a.startswith("tenku.pipeline")
                   for b in bs)


def test_environment_is_read_only_at_the_edges():
    readers = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(name)
    assert readers <= ENV_READERS, sorted(readers - ENV_READERS)
