"""Model files: serialise an estimator with skops, and say when it could never be loaded safely."""

from __future__ import annotations


def dump_model(est: object) -> tuple[bytes, list[str]]:
    """Serialise ``est`` with skops; return the bytes and the types it cannot load by default.

    The second item is ``skops.io.get_untrusted_types(data=...)``: the types ``skops.io.loads``
    must be told to trust (e.g. ``sklearn.tree._tree.Tree``). Pass it to :func:`untrusted_reason`
    to learn whether some of them can never be loaded safely (lambdas, notebook definitions).
    """
    import skops.io as sio

    data = sio.dumps(est)
    return data, list(sio.get_untrusted_types(data=data))


def _find_callable_owner(est: object, module: str, func_name: str) -> str | None:
    """``Owner(param=<name>)`` for a callable parameter of ``est`` (or a nested step)."""
    try:
        params = est.get_params(deep=True)  # type: ignore[attr-defined]
    except Exception:
        return None
    for key, value in params.items():
        if getattr(value, "__module__", None) != module:
            continue
        if getattr(value, "__name__", None) != func_name or isinstance(value, type):
            continue
        owner_key, _, param = key.rpartition("__")
        owner = params.get(owner_key, est) if owner_key else est
        return f"{type(owner).__name__}({param}={func_name})"
    return None


def untrusted_reason(types: list[str], *, est: object | None = None) -> str | None:
    """Say why a model cannot be loaded safely later, or ``None`` when it can.

    ``types`` is the list :func:`dump_model` returned. Ordinary untrusted types (a tree's
    ``sklearn.tree._tree.Tree``, ``f_classif``) are fine: a loader can allow-list them. But a
    lambda, a function defined inside another function, or anything defined in the notebook
    itself (module ``__main__``) cannot be imported by a process that did not run the notebook,
    so the model would fail to load under cron. For those this returns one line naming each
    culprit and the fix. Given the estimator as ``est``, it also says where the function sits,
    e.g. ``FunctionTransformer(func=<lambda>)``.
    """
    found: list[str] = []
    lambdas = locals_ = notebook = 0
    for type_name in types:
        module, _, short = type_name.rpartition(".")
        if "<lambda>" in type_name:
            lambdas += 1
            what = "a lambda"
        elif "<locals>" in type_name:
            locals_ += 1
            what = "a function defined inside a function"
        elif type_name.startswith("__main__."):
            notebook += 1
            what = "a function or class defined in the notebook"
        else:
            continue
        where = _find_callable_owner(est, module, short) if est is not None else None
        found.append(f"{what} ({where or type_name})")
    if not found:
        return None
    it = "it" if len(found) == 1 else "them"
    if notebook and not (lambdas or locals_):
        fix = "move the definition to an importable module (a .py file next to the notebook)"
    elif lambdas == len(found):
        fix = "use a named function defined in an importable module"
    else:
        fix = "use named functions and classes defined in an importable module"
    return f"uses {' and '.join(found)}; skops cannot load {it} safely: {fix}"
