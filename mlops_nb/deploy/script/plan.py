"""What retrain.py will contain, decided from a run's recorded cells: which cells are replayed (as
steps), the definitions they need from elsewhere in the notebook, how fresh data binds to the data
stage's frames, and where the model's X and y are after the steps."""

from __future__ import annotations

import ast
import builtins
import symtable
from dataclasses import dataclass, field
from typing import Any

from mlops_nb.deploy.script.clean import clean_cell
from mlops_nb.errors import ExportError
from mlops_nb.stages import REPLAYED

_FUNCTION_NAMES = {"data": "load_data", "features": "build_features", "selection": "select_features"}
_RESERVED = frozenset({"prepare", "notebook_data", "mlops_nb", "WORKDIR", "DATA_FRAMES", "ns"})


@dataclass
class Step:
    """One recorded cell turned into a function of retrain.py."""

    stage: str
    seq: int
    execution_count: int | None
    function: str
    body: str
    inputs: list[str]
    outputs: list[str]
    nested_outputs: list[str]
    imports: list[str]
    referenced: set[str]
    assigned: set[str]
    imported: set[str]
    source: str = ""  # the cell as recorded, to name a line of it in messages


@dataclass
class ScriptPlan:
    """What retrain.py will contain and how fresh data and the model's X and y are found."""

    steps: list[Step]
    imports: list[str]
    header: list[str]
    binding: dict[str, Any] | None
    x_name: str | None
    y_name: str | None
    y_expression: str
    target: str | None
    data_frames: list[str]
    x_capture: dict | None
    warnings: list[str] = field(default_factory=list)


def replay_cells(events: list[dict], upto_seq: int | None) -> list[dict]:
    """The stage attempts retrain.py replays: per ``data``, ``features`` and ``selection``, its
    latest successful cells that ran before the model was fitted (by cell id when the front end
    sent ids; else the latest block of back-to-back attempts, one per distinct source), in the
    order they ran."""
    stage_rows = [e for e in events if e["kind"] == "stage"]
    chosen = []
    for stage in REPLAYED:
        rows = [(i, r) for i, r in enumerate(stage_rows)
                if r["stage"] == stage and (upto_seq is None or r["seq"] < upto_seq)]
        if not rows:
            continue
        if any(r.get("cell_id") for _, r in rows):
            latest = {}
            for _, r in rows:
                if r["status"] == "ok":
                    latest[r.get("cell_id")] = r
            chosen.extend(latest.values())
            continue
        k = len(rows) - 1
        while k > 0 and rows[k - 1][0] == rows[k][0] - 1:
            k -= 1
        by_source = {}
        for _, r in rows[k:]:
            if r["status"] == "ok":
                by_source.pop(r["source_sha256"], None)
                by_source[r["source_sha256"]] = r
        chosen.extend(by_source.values())
    return sorted(chosen, key=lambda r: r["seq"])


def _top_level_bindings(tree: ast.Module) -> tuple[list[str], list[str], set[str]]:
    """Names a cell binds at its top level: (direct, in compound statements, loop/with/except targets)."""
    direct, nested, targets = [], [], set()

    def store_names(node: ast.AST) -> list[str]:
        return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]

    def visit(statements: list[ast.stmt], into: list[str]) -> None:
        for s in statements:
            if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                into.append(s.name)
            elif isinstance(s, ast.Assign):
                for t in s.targets:
                    into.extend(store_names(t))
            elif isinstance(s, ast.AugAssign | ast.AnnAssign):
                if getattr(s, "value", None) is not None or isinstance(s, ast.AugAssign):
                    into.extend(store_names(s.target))
            elif isinstance(s, ast.For | ast.AsyncFor):
                targets.update(store_names(s.target))
                visit(s.body + s.orelse, nested)
            elif isinstance(s, ast.With | ast.AsyncWith):
                for item in s.items:
                    if item.optional_vars is not None:
                        targets.update(store_names(item.optional_vars))
                visit(s.body, nested)
            elif isinstance(s, ast.If | ast.While):
                visit(s.body + s.orelse, nested)
            elif isinstance(s, ast.Try):
                for handler in s.handlers:
                    if handler.name:
                        targets.add(handler.name)
                    visit(handler.body, nested)
                visit(s.body + s.orelse + s.finalbody, nested)
            if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                for n in ast.walk(s):  # walrus anywhere in the statement
                    if isinstance(n, ast.NamedExpr):
                        into.append(n.target.id)

    visit(tree.body, direct)
    deleted = {t.id for s in tree.body if isinstance(s, ast.Delete) for t in s.targets if isinstance(t, ast.Name)}
    direct = [n for n in dict.fromkeys(direct) if n not in deleted]
    nested = [n for n in dict.fromkeys(nested) if n not in direct and n not in deleted]
    return direct, nested, targets


def _referenced(code: str) -> set[str]:
    """Global names a piece of code reads (at top level or from inside its functions)."""
    names: set[str] = set()

    def walk(table: symtable.SymbolTable, top: bool) -> None:
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (top or symbol.is_global()):
                names.add(symbol.get_name())
        for child in table.get_children():
            walk(child, False)

    walk(symtable.symtable(code, "<cell>", "exec"), True)
    return names


def _split_imports(code: str) -> tuple[str, list[str], set[str]]:
    """Take a cell's top-level imports out (they go to the top of retrain.py, where every step sees
    them). Returns the rest, the import statements and the names they bind."""
    tree = ast.parse(code)
    lines = code.splitlines()
    imports, bound, dropped = [], set(), set()
    for s in tree.body:
        if isinstance(s, ast.Import | ast.ImportFrom):
            imports.append("\n".join(lines[s.lineno - 1:s.end_lineno]).strip())
            bound.update((a.asname or a.name).split(".")[0] for a in s.names)
            dropped.update(range(s.lineno, s.end_lineno + 1))
        elif isinstance(s, ast.Global | ast.Nonlocal):
            raise ExportError("a recorded cell uses `global`, which retrain.py cannot turn into a function; "
                              "remove it from the cell and re-run the stages")
    rest = "\n".join(line for n, line in enumerate(lines, 1) if n not in dropped).strip("\n")
    return (rest + "\n" if rest else ""), imports, bound


def _make_step(row: dict, function: str) -> tuple[Step, list[str]]:
    code, notes = clean_cell(row["source"])
    code, imports, imported = _split_imports(code)
    tree = ast.parse(code)
    direct, nested, targets = _top_level_bindings(tree)
    referenced = _referenced(code) if code.strip() else set()
    step = Step(row["stage"], row["seq"], row.get("execution_count"), function, code, [], direct, nested, imports,
                referenced - imported, set(direct) | set(nested) | targets | imported, imported, row["source"])
    return step, notes


def _header_definitions(events: list[dict], steps: list[Step], upto_seq: int | None
                        ) -> tuple[list[str], list[str], set[str]]:
    """Imports, functions, classes and literal constants defined outside the replayed cells (in
    unstaged cells or other stages, before the model was fitted) that the replayed code uses:
    (imports, other definitions, the names they bind)."""
    replayed = {s.seq for s in steps}
    definitions: dict[str, tuple[str, set[str]]] = {}
    import_texts: set[str] = set()
    for event in events:
        if event["seq"] in replayed or not event.get("source") or event.get("status") == "error":
            continue
        if upto_seq is not None and event["seq"] >= upto_seq:
            continue
        try:
            code, _ = clean_cell(event["source"])
            tree = ast.parse(code)
        except (ExportError, SyntaxError):
            continue
        lines = code.splitlines()
        for s in tree.body:
            names: list[str] = []
            if isinstance(s, ast.Import | ast.ImportFrom):
                names = [(a.asname or a.name).split(".")[0] for a in s.names if a.name != "*"]
            elif isinstance(s, ast.FunctionDef | ast.ClassDef):
                names = [s.name]
            elif (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                  and _is_literal(s.value)):
                names = [s.targets[0].id]
            if not names:
                continue
            first = min([s.lineno, *(d.lineno for d in getattr(s, "decorator_list", []))])
            text = "\n".join(lines[first - 1:s.end_lineno])
            uses = set()
            if isinstance(s, ast.Import | ast.ImportFrom):
                import_texts.add(text)
            else:
                uses = _referenced(text)
            for name in names:
                definitions[name] = (text, uses)
    needed = set().union(*(s.referenced for s in steps)) - set(dir(builtins))
    for step in steps:
        needed -= step.assigned
    included: dict[str, str] = {}
    pending = [n for n in needed if n in definitions]
    while pending:
        name = pending.pop()
        if name in included:
            continue
        text, uses = definitions[name]
        included[name] = text
        pending.extend(n for n in uses if n in definitions and n not in included)
    order = {text: i for i, (text, _) in enumerate(definitions.values())}
    header = sorted(dict.fromkeys(included.values()), key=lambda t: order.get(t, 0))
    return ([t for t in header if t in import_texts], [t for t in header if t not in import_texts],
            set(included))


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False
    return True


def _literal_constants(steps: list[Step]) -> dict[str, str]:
    """``NAME = <literal>`` statements of the data steps, by name (the last one wins)."""
    found = {}
    for step in steps:
        if step.stage != "data":
            continue
        lines = step.body.splitlines()
        for s in ast.parse(step.body).body:
            if (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                    and _is_literal(s.value)):
                found[s.targets[0].id] = "\n".join(lines[s.lineno - 1:s.end_lineno])
    return found


def _capture_columns(record: dict) -> list[str]:
    return [c["name"] for c in record["summary"]["columns"]]


def plan_script(events: list[dict], captures: list[dict], model_capture: dict | None, model: Any, *,
                target: str | None, X: str | None = None, y: str | None = None) -> ScriptPlan:
    """Decide what retrain.py contains: the replayed cells as steps, the header definitions, how
    fresh data binds to the data stage's frames, and where X and y are after the steps.
    :class:`ExportError` asks for ``--X NAME --y NAME`` where this is ambiguous."""
    upto = model_capture["seq"] if model_capture else None
    steps, warnings = _replayed_steps(events, upto)
    header_imports, header, header_names = _header_definitions(events, steps, upto)
    _refuse_reserved_names(steps, header_names)

    replayed_seqs = {s.seq for s in steps}
    stage_caps = [c for c in captures if c["seq"] in replayed_seqs and c["kind"] in ("dataframe", "series")]
    data_caps = {c["name"]: c for c in stage_caps if c["stage"] == "data"}
    latest_caps = {c["name"]: c for c in stage_caps}
    target = _target_column(target, X, y, latest_caps)
    x_name = X if X is not None or not steps else _input_frame(model, model_capture, latest_caps)
    binding, data_frames = _fresh_data_binding(steps, data_caps, target, X, y)
    if binding is not None:
        _carry_data_constants(steps, data_frames, header, header_names)
    y_name, y_expression = _target_series(steps, latest_caps, binding, target, x_name, y)
    _step_inputs(steps, set(data_frames) if binding else set(), header_names, warnings)
    x_capture = latest_caps.get(x_name) if x_name else None
    return ScriptPlan(steps, header_imports, header, binding, x_name, y_name, y_expression, target, data_frames,
                      x_capture, warnings)


def _replayed_steps(events: list[dict], upto: int | None) -> tuple[list[Step], list[str]]:
    """The replayed cells as steps, named after their stage (numbered when a stage has several),
    and the notes of what cleaning dropped from them."""
    rows = replay_cells(events, upto)
    warnings: list[str] = []
    steps: list[Step] = []
    counts = {stage: sum(1 for r in rows if r["stage"] == stage) for stage in REPLAYED}
    seen: dict[str, int] = {}
    for row in rows:
        seen[row["stage"]] = seen.get(row["stage"], 0) + 1
        base = _FUNCTION_NAMES[row["stage"]]
        step, notes = _make_step(row, base if counts[row["stage"]] == 1 else f"{base}_{seen[row['stage']]}")
        steps.append(step)
        warnings.extend(f"{row['stage']} cell [{row.get('execution_count')}]: {n}" for n in notes)
    return steps, warnings


def _refuse_reserved_names(steps: list[Step], header_names: set[str]) -> None:
    clash = sorted((header_names | {n for s in steps for n in s.assigned if n in _RESERVED}) & _RESERVED)
    if clash:
        raise ExportError(f"the notebook defines {', '.join(clash)}, a name retrain.py needs for itself; "
                          f"rename it in the notebook and re-run the stages")


def _target_column(target: str | None, X: str | None, y: str | None, latest_caps: dict[str, dict]) -> str:
    """The target column: the requirement's, else the column of the ``--y`` frame. Checks that
    ``--X`` and ``--y`` name frames the stages produced."""
    for flag, name in (("--X", X), ("--y", y)):
        if name is not None and name not in latest_caps:
            raise ExportError(f"{flag} {name}: the data, features and selection stages produced no frame named "
                              f"{name!r}; they produced: {', '.join(latest_caps) or 'nothing'}")
    if target is None and y is not None:
        target = latest_caps[y]["summary"]["columns"][0]["name"]
    if target is None:
        raise ExportError("export needs the target column: state it with `%mlops require METRIC >= VALUE --target "
                          "COLUMN` (then re-run validation), or name the target frame with --y NAME")
    return target


def _input_frame(model: Any, model_capture: dict | None, latest_caps: dict[str, dict]) -> str:
    """The frame holding exactly the model's input columns (by name, else by count); of several
    (X and its splits), the one with the most rows."""
    features = list(getattr(model, "feature_names_in_", [])) or (
        (model_capture or {}).get("summary", {}).get("feature_names_in") or [])
    features = [str(f) for f in features]
    if features:
        matches = [n for n, c in latest_caps.items() if c["kind"] == "dataframe"
                   and [col["name"] for col in c["summary"]["columns"]] == features]
    else:
        n_in = getattr(model, "n_features_in_", None)
        matches = [n for n, c in latest_caps.items() if c["kind"] == "dataframe"
                   and len(c["summary"]["columns"]) == n_in]
    if len(matches) > 1:
        most = max(latest_caps[n]["summary"]["rows"] for n in matches)
        largest = [n for n in matches if latest_caps[n]["summary"]["rows"] == most]
        matches = largest if len(largest) == 1 else matches
    if len(matches) != 1:
        found = f"several frames fit ({', '.join(matches)})" if matches else "no frame holds exactly its columns"
        raise ExportError(f"cannot tell which frame is the model's input X: {found}; export with --X NAME --y NAME")
    return matches[0]


def _fresh_data_binding(steps: list[Step], data_caps: dict[str, dict], target: str, X: str | None,
                        y: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Which data-stage frames fresh data replaces: one frame holding the target column
    (``{"mode": "frame"}``), or an input frame and a target series (``{"mode": "split"}``)."""
    if not data_caps and any(s.stage == "data" for s in steps):
        raise ExportError("the data stage produced no pandas DataFrame or Series, so fresh data has nowhere to go; "
                          "load the data into a DataFrame in the data stage and re-run the stages")
    if not data_caps:
        return None, []
    frames = [n for n, c in data_caps.items() if c["kind"] == "dataframe"]
    with_target = [n for n in frames if target in _capture_columns(data_caps[n])]
    y_series = [n for n, c in data_caps.items() if c["kind"] == "series"
                and c["summary"]["columns"][0]["name"] == target]
    if X in frames and y in data_caps and data_caps[y]["kind"] == "series":
        binding = {"mode": "split", "X": X, "y": y}
    elif len(with_target) == 1:
        binding = {"mode": "frame", "frame": with_target[0]}
    elif len(frames) == 1 and len(y_series) == 1:
        binding = {"mode": "split", "X": frames[0], "y": y_series[0]}
    else:
        listing = ", ".join(f"{n} ({data_caps[n]['kind']})" for n in data_caps)
        raise ExportError(
            f"cannot tell which frame fresh data replaces: the data stage produced {listing}. Keep one "
            f"DataFrame holding the input columns and the target {target!r} in the data stage, or, when it "
            f"produces the input and the target separately, export with --X NAME --y NAME naming them")
    return binding, [binding["frame"]] if binding["mode"] == "frame" else [binding["X"], binding["y"]]


def _carry_data_constants(steps: list[Step], data_frames: list[str], header: list[str],
                          header_names: set[str]) -> None:
    """Literal constants of the data cells (``FEATURES = [...]``) go to the header, since fresh data
    skips the data step; any other data-stage name a later step uses is refused."""
    unbound = {n for s in steps if s.stage == "data" for n in s.outputs + s.nested_outputs} - set(data_frames)
    constants = _literal_constants(steps)
    header.extend(text for name, text in constants.items() if name in unbound and text not in header)
    header_names |= set(constants) & unbound
    unbound -= set(constants)
    for step in steps:
        earlier = {n for s in steps if s.stage != "data" and s.seq < step.seq for n in s.assigned}
        used = sorted((step.referenced & unbound) - earlier) if step.stage != "data" else []
        if used:
            raise ExportError(
                f"the {step.stage} cell [{step.execution_count}] uses {', '.join(used)} from the data stage, "
                f"but fresh data replaces only {', '.join(data_frames)}; create {', '.join(used)} in the "
                f"features stage instead and re-run the stages")


def _target_series(steps: list[Step], latest_caps: dict[str, dict], binding: dict[str, Any] | None, target: str,
                   x_name: str | None, y: str | None) -> tuple[str | None, str]:
    """``(y_name, y_expression)``: the target series after the steps (with as many rows as X),
    else the target column of the bound frame."""
    if y is not None or not steps:
        return y, f"ns[{y!r}]"
    series = [n for n, c in latest_caps.items() if c["kind"] == "series"
              and c["summary"]["columns"][0]["name"] == target]
    x_rows = latest_caps[x_name]["summary"]["rows"] if x_name in latest_caps else None
    series = [n for n in series if latest_caps[n]["summary"]["rows"] == x_rows] or series
    if series:
        return series[-1], f"ns[{series[-1]!r}]"
    if binding and binding["mode"] == "frame":
        return None, f"ns[{binding['frame']!r}][{target!r}]"
    raise ExportError(f"cannot find the target {target!r} after the data and feature steps; "
                      f"export with --X NAME --y NAME")


def _step_inputs(steps: list[Step], bound: set[str], header_names: set[str], warnings: list[str]) -> None:
    """Set each step's inputs: what earlier steps (or the bound frames) provide; warn about names
    no replayed cell defines."""
    known = set(dir(builtins)) | header_names | {"ns"} | {n for s in steps for n in s.imported}
    for step in steps:
        if step.stage == "data":
            provided = {n for s in steps if s.stage == "data" and s.seq < step.seq for n in s.assigned}
        else:
            provided = bound | {n for s in steps if s.stage != "data" and s.seq < step.seq for n in s.assigned}
        step.inputs = sorted(n for n in step.referenced if n in provided and n not in known)
        missing = sorted(n for n in step.referenced - provided - step.assigned - known)
        if missing:
            warnings.append(f"the {step.stage} cell [{step.execution_count}] uses {', '.join(missing)}, which no "
                            f"replayed cell defines; define them in a data/features/selection cell")
