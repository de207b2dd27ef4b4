"""The candidate lines of features.py: the statements of the features and selection cells that the
model's input depends on (a backward slice from the input frame), with what each reads and writes.

Which of them really are row-wise is decided by running them (:mod:`mlops_nb.deploy.rowwise`, in
export's replay process): this module only reads code. A statement writes the names it assigns,
the frame under a subscript or attribute it assigns (``df["a"] = ...``, ``df.loc[...] = ...``)
and a frame it changes in place (``df.fillna(0, inplace=True)``, ``X.pop("a")``)."""

from __future__ import annotations

import ast
from typing import Any

from mlops_nb.deploy.script.plan import ScriptPlan, Step

#: Methods that change their object in place without ``inplace=True``.
_MUTATING = frozenset({"pop", "update", "insert", "append", "extend", "remove", "clear", "setdefault", "sort"})


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _writes(statement: ast.stmt) -> set[str]:
    names: set[str] = set()
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {statement.name}
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.Subscript | ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del):
            root = _root(node)
            if root:
                names.add(root)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            inplace = any(k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
                          for k in node.keywords)
            if inplace or node.func.attr in _MUTATING:
                root = _root(node.func.value)
                if root:
                    names.add(root)
    return names


def _reads(statement: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _kills(statement: ast.stmt, reads: set[str]) -> set[str]:
    """Names a plain ``name = value`` rebinds without reading: earlier values of them are not needed."""
    if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
        return {t.id for t in statement.targets} - reads
    return set()


def _cell_line(step: Step, first_line: str) -> int | None:
    """The statement's line number in the cell as recorded (the ``%%stage`` header is line 1)."""
    wanted = first_line.strip()
    for number, line in enumerate(step.source.splitlines(), 1):
        if line.strip() == wanted:
            return number
    return None


def candidate_statements(plan: ScriptPlan) -> list[dict[str, Any]]:
    """The features and selection statements the model's input frame depends on, in the order they
    ran: each with its code, the cell and line it came from, and the names it reads and writes."""
    statements = []
    for step in plan.steps:
        if step.stage == "data" or not step.body.strip():
            continue
        lines = step.body.splitlines()
        for node in ast.parse(step.body).body:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            code = "\n".join(lines[first - 1:node.end_lineno])
            reads = _reads(node)
            statements.append({
                "code": code, "stage": step.stage, "cell": step.execution_count,
                "line": _cell_line(step, lines[first - 1]), "reads": sorted(reads), "writes": sorted(_writes(node)),
                "kills": sorted(_kills(node, reads)),
            })
    needed = {plan.x_name}
    kept = []
    for statement in reversed(statements):
        if needed & set(statement["writes"]):
            kept.append(statement)
            needed = (needed - set(statement["kills"])) | set(statement["reads"])
    return kept[::-1]


def _bound_names(text: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def rowwise_request(plan: ScriptPlan, model: Any, info: dict[str, Any]) -> dict[str, Any] | None:
    """What export's replay needs to build and prove features.py; None when there is no data stage
    to start the rows from or no model input frame to end at."""
    if plan.binding is None or plan.x_name is None:
        return None
    imports = list(dict.fromkeys([*plan.imports, *(i for step in plan.steps for i in step.imports)]))
    definitions = [{"code": text, "names": sorted(_bound_names(text)), "reads": sorted(
        {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})}
        for text in [*imports, *plan.header] if not text.startswith("from __future__")]
    return {
        "statements": candidate_statements(plan), "definitions": definitions, "binding": plan.binding,
        "target": plan.target, "x_name": plan.x_name, "y_name": plan.y_name,
        "features": [str(c) for c in getattr(model, "feature_names_in_", [])],
        "name": info["name"], "version": info["version"],
    }
