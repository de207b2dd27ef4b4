"""One package version compiled for scoring: what :func:`mlops_nb.deploy.predict.predict`, the
``predict`` of ``mnb.load_model`` and ``mlops-nb serve`` all call.

Everything a request does not change is worked out once per version, when the version is loaded
(or switched to): schema.json's two column lists as names, a name set and the recorded dtypes, the
columns whose values need a missing or infinite check, features.py as a module, the model's
methods, whether it gives probabilities, and, for a scikit-learn ``Pipeline``, its steps, so that a
classifier's input is transformed once for both ``predict`` and ``predict_proba``.

A pipeline's transformers are also compiled from their fitted attributes when they are of the
common kinds (:mod:`mlops_nb.deploy.transforms`, proven against scikit-learn on probe rows the first
time the version scores), which spares a small request scikit-learn's input handling.

A request then costs a set comparison of its columns, one comparison of its dtypes with the
recorded ones and one vectorised look for missing and infinite values. Anything that does not
pass that fast check (a missing column, a dtype a text format changed, a value the schema refuses)
takes the general path (:func:`mlops_nb.deploy.rows.coerce`, then
:func:`mlops_nb.deploy.schema.conform`), which converts what converts losslessly and otherwise
raises the :class:`~mlops_nb.errors.SchemaMismatch` naming each column: the errors are the same
as ever, only the frames that already fit stop paying for them.
"""

from __future__ import annotations

import re
import threading
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_nb.deploy.layout import FEATURES_FILE, MANIFEST
from mlops_nb.deploy.rows import detect, schema_columns
from mlops_nb.deploy.schema import read_schema
from mlops_nb.errors import SchemaMismatch

if TYPE_CHECKING:
    import pandas

#: numpy's integer and boolean dtypes hold no missing value: nothing to count (pandas' nullable
#: ``Int64`` and ``boolean`` can, and are counted)
_CANNOT_BE_MISSING = re.compile(r"u?int\d*|bool")


class Plan:
    """One section of schema.json (``raw`` rows or the ``model``'s input), ready to check frames against."""

    def __init__(self, columns: Sequence[Mapping[str, Any]], what: str):
        self.columns = [dict(c) for c in columns]
        self.what = what
        self.names = [c["name"] for c in self.columns]
        self.name_set = frozenset(self.names)
        self.expected = [_dtype(c.get("dtype")) for c in self.columns]
        self.labels = _labels(self.names)
        # floats of a numeric column: one array for the infinite and missing checks
        self.floats = [c["name"] for c in self.columns if c.get("kind") == "numeric"
                       and str(c.get("dtype") or "").lower().startswith("float")]
        self.float_limits = [_limit(c) for c in self.columns if c["name"] in set(self.floats)]
        # other columns that may hold a missing value the schema refuses
        self.others = [(c["name"], _limit(c)) for c in self.columns if c["name"] not in set(self.floats)
                       and not _CANNOT_BE_MISSING.fullmatch(str(c.get("dtype") or "")) and _limit(c) is not None]

    def fast(self, frame: pandas.DataFrame) -> pandas.DataFrame | None:
        """``frame`` reduced to this plan's columns when it fits as it is (columns there, dtypes the
        recorded ones, no refused missing or infinite value); None when it needs the general path.
        Selecting columns is the dearest step for a single row, so a frame already in order is kept."""
        import numpy as np

        if frame.columns.tolist() == self.names:
            rows = frame
        elif self.name_set.issubset(frame.columns):
            rows = frame[self.names]
        else:
            return None
        if rows.dtypes.tolist() != self.expected:
            return None
        n = len(rows)
        if self.floats:
            if len(self.floats) == len(self.names):  # all floats: one array, no column taken one by one
                values = rows.to_numpy(dtype=float, na_value=np.nan)
            else:
                values = np.column_stack([rows[c].to_numpy(dtype=float, na_value=np.nan) for c in self.floats])
            if np.isinf(values).any():
                return None
            if any(limit is not None and missing and missing > limit * n
                   for missing, limit in zip(np.isnan(values).sum(axis=0).tolist(), self.float_limits, strict=True)):
                return None
        for name, limit in self.others:
            missing = int(rows[name].isna().to_numpy().sum())
            if missing and missing > limit * n:
                return None
        return rows

    def conform(self, frame: pandas.DataFrame) -> pandas.DataFrame:
        """``frame`` as this plan's columns with their recorded dtypes: the fast check; else the
        lossless conversions of the columns whose dtype differs (a JSON null in a float column, text
        numbers from CSV) and the fast check again; else the general path, whose schema check names
        each column that does not fit."""
        from mlops_nb.deploy.rows import coerce
        from mlops_nb.deploy.schema import conform

        rows = self.fast(frame)
        if rows is None:
            coerced = coerce(frame, self.columns)
            rows = self.fast(coerced)
            if rows is None:
                rows = conform(coerced, self.columns, what=self.what)
        if rows.columns.dtype != self.labels.dtype and rows.columns.tolist() == self.names:
            rows = rows.set_axis(self.labels, axis=1)
        return rows


def object_labels(frame: pandas.DataFrame) -> pandas.DataFrame:
    """``frame`` labelled as :meth:`Plan.conform` labels every frame it gives (:func:`_labels`)."""
    labels = _labels(frame.columns.tolist())
    return frame if frame.columns.dtype == labels.dtype else frame.set_axis(labels, axis=1)


def _labels(names: Sequence[str]) -> Any:
    """The column labels of every frame a plan conforms: an object ``Index``. pandas 3 makes text
    labels a ``str`` Index, which its own column operations convert at each use: features.py's
    lines (a column added, one converted, two dropped) on a one-row frame cost ~20% more with it,
    ~0.35 ms of a mixed-type request. The values are untouched, and export proves features.py on
    frames labelled so (:func:`mlops_nb.deploy.rowwise.prove`). Labels that are not all text are
    left as pandas makes them."""
    import pandas as pd

    return pd.Index(list(names), dtype=object) if all(isinstance(n, str) for n in names) else pd.Index(list(names))


def _dtype(name: Any) -> Any:
    """The pandas dtype schema.json names (compared with a frame's in one list comparison); an
    unknown name stays a string, which no dtype equals, so such frames take the general path."""
    import pandas as pd

    try:
        return pd.api.types.pandas_dtype(str(name))
    except (TypeError, ValueError):
        return f"unknown dtype {name}"


def _limit(column: Mapping[str, Any]) -> float | None:
    """The share of missing values a column accepts: None for any (it had some in training)."""
    return None if column.get("nullable", True) else float(column.get("max_missing", 0.0))


class Scorer:
    """A package version's inference path, compiled: :meth:`predict` and :meth:`model_input`."""

    def __init__(self, folder: Path, model: Any, schema: Mapping[str, Any], features: types.ModuleType | None):
        self.folder = folder
        self.model = model
        self.schema = schema
        self.features = features
        self.has_raw = bool(schema.get("raw"))
        self.raw = Plan(schema_columns(schema, "raw"), "the raw rows")
        self.input = Plan(schema_columns(schema, "model"), "the input")
        self.model_plan = Plan(schema_columns(schema, "model"), "the model's input")
        self.adds_columns = bool(self.input.name_set - self.raw.name_set)
        # the columns recorded as float64 wherever they appear: a request's table of those alone can
        # be read as one float64 block (mlops_nb.deploy.serve.protocol)
        kinds = [(c["name"], str(c.get("dtype") or "")) for plan in (self.raw, self.input) for c in plan.columns]
        self.floats = frozenset(n for n, d in kinds if d == "float64") - {n for n, d in kinds if d != "float64"}
        self.classes = getattr(model, "classes_", None)
        self._predict = _own(model, "predict")
        self._proba = _own(model, "predict_proba") if self.classes is not None else None
        self.probabilities = [f"probability_{label}" for label in self.classes] if self._proba else []
        self._steps: list[Any] | None = None
        self._final: Any = None
        steps = getattr(model, "steps", None)
        if _is_pipeline(model) and steps and len(steps) > 1:
            # Pipeline.predict(X) is its steps' transform in turn, then the last step's predict: done
            # here once for predict and predict_proba together (the same calls, in the same order)
            self._steps = [step for _, step in steps[:-1] if step is not None and step != "passthrough"]
            self._final = steps[-1][1]
        self._transform: Any = _NOT_YET  # the compiled transform (mlops_nb.deploy.transforms), made on first use

    def compiled_transform(self) -> Any:
        """The pipeline's transformers compiled from their fitted attributes and proven on probe rows
        (:mod:`mlops_nb.deploy.transforms`), or None (scikit-learn transforms every request); made
        once, on the first call (a server makes it at start)."""
        if self._transform is _NOT_YET:
            from mlops_nb.deploy.probes import probe_frames
            from mlops_nb.deploy.transforms import compile_transform

            made = None
            if self._steps:
                made = compile_transform(self._steps, self._final,
                                         probe_frames(self.folder, self.schema, self.model_input))
            self._transform = made
        return self._transform

    def kind(self, columns: Sequence[Any], wanted: str = "auto") -> str:
        """``raw`` or ``model``: :func:`mlops_nb.deploy.rows.detect` by set operations; detect itself
        for anything but a frame that plainly fits (so its errors are the same)."""
        if wanted == "auto":
            present = {str(c) for c in columns}
            if self.has_raw and self.raw.name_set <= present:
                return "model" if self.adds_columns and self.input.name_set <= present else "raw"
            if self.input.name_set <= present:
                return "model"
        return detect(columns, self.schema, wanted)

    def fits(self, columns: Sequence[Any]) -> bool:
        """Whether ``columns`` are those of raw rows or of the model's input."""
        try:
            self.kind(columns)
        except SchemaMismatch:
            return False
        return True

    def model_input(self, frame: pandas.DataFrame, input: str = "auto") -> pandas.DataFrame:
        """The model's input for ``frame`` (see :func:`mlops_nb.deploy.predict.model_input`)."""
        kind = self.kind(frame.columns, input)
        if kind == "model":  # conformed once: a second pass (as after features.py) would change nothing
            return self.input.conform(frame)
        rows = self.raw.conform(frame)
        if self.features is None:
            raise SchemaMismatch("this package has no features.py to make the model's input from raw rows; "
                                 "send rows of the model's input", [])
        index = rows.index
        made = self.features.model_input(rows.reset_index(drop=True))
        if len(made) != len(rows):
            raise SchemaMismatch(f"features.py kept {len(made)} of the {len(rows)} rows; send rows the notebook's "
                                 f"features cells keep", [])
        made.index = index
        return self.model_plan.conform(made)

    def predict(self, frame: pandas.DataFrame, input: str = "auto") -> pandas.DataFrame:
        """The table of :func:`mlops_nb.deploy.predict.predict` for ``frame``."""
        import pandas as pd

        return self._table(pd, *self.scores(frame, input), frame.index)

    def scores(self, frame: pandas.DataFrame, input: str = "auto", *, probabilities: bool = True) -> tuple[Any, Any]:
        """The model's predictions and probabilities (None when it has none, or when not wanted) for
        ``frame``, as arrays: :meth:`predict` without its table (the scoring server answers from these)."""
        return self.call(self.model_input(frame, input), probabilities=probabilities)

    def predict_many(self, frames: Sequence[pandas.DataFrame]) -> list[Any]:
        """:meth:`predict` for each frame, each checked and turned into model input on its own (its
        errors its own), the model called once for all of them: the table of each, or the exception
        its own :meth:`predict` would raise."""
        import pandas as pd

        return [out if isinstance(out, BaseException) else self._table(pd, *out, frame.index)
                for frame, out in zip(frames, self.scores_many(frames), strict=True)]

    def scores_many(self, frames: Sequence[pandas.DataFrame], *, probabilities: bool = True) -> list[Any]:
        """:meth:`scores` for each frame, the model called once for all of them (each frame checked
        and turned into model input on its own, so its errors are its own): each frame's
        ``(predictions, probabilities)`` or the exception its own call would raise. The scoring
        server's concurrent requests share one call."""
        import pandas as pd

        out: list[Any] = [None] * len(frames)
        inputs = []
        for i, frame in enumerate(frames):
            try:
                inputs.append((i, self.model_input(frame)))
            except Exception as exc:  # said to that request alone
                out[i] = exc
        if len(inputs) == 1:
            i, only = inputs[0]
            try:
                out[i] = self.call(only, probabilities=probabilities)
            except Exception as exc:
                out[i] = exc
        elif inputs:
            try:
                predictions, proba = self.call(pd.concat([x for _, x in inputs], ignore_index=True),
                                               probabilities=probabilities)
            except Exception:  # a row the model cannot take: each frame alone, so only its request fails
                for i, x in inputs:
                    try:
                        out[i] = self.call(x, probabilities=probabilities)
                    except Exception as exc:
                        out[i] = exc
                return out
            start = 0
            for i, x in inputs:
                stop = start + len(x)
                out[i] = (predictions[start:stop], None if proba is None else proba[start:stop])
                start = stop
        return out

    def _table(self, pd: Any, predictions: Any, proba: Any, index: Any) -> pandas.DataFrame:
        out = {"prediction": predictions}
        if proba is not None:
            for i, column in enumerate(self.probabilities):
                out[column] = proba[:, i]
        return pd.DataFrame(out, index=index)

    def call(self, inputs: Any, *, probabilities: bool = True) -> tuple[Any, Any]:
        """The model's predictions and probabilities (None when it has none or ``probabilities`` is
        False) for its input."""
        proba = None
        if self._steps is not None:
            fast = self.compiled_transform()
            transformed = fast(inputs) if fast is not None else None
            if transformed is None:  # not compiled, or a request it declines: scikit-learn's own
                transformed = inputs
                for step in self._steps:
                    transformed = step.transform(transformed)
            predictions = self._final.predict(transformed)
            if probabilities and self._proba is not None:
                proba = _try(self._final, "predict_proba", transformed)
        else:
            predictions = self._predict(inputs)
            if probabilities and self._proba is not None:
                proba = _try_call(self._proba, inputs)
        return predictions, proba


_NOT_YET = object()


def _is_pipeline(model: Any) -> bool:
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - scikit-learn is a runtime dependency
        return False
    return type(model) is Pipeline  # a subclass may predict differently: it calls its own methods


def _own(model: Any, method: str) -> Any:
    """The estimator's own bound ``method`` (not the package path load_model puts in front of it);
    None when it has none."""
    attached = vars(model).get(method) if hasattr(model, "__dict__") else None
    if attached is not None and hasattr(attached, "original"):  # predict.PackageMethod
        return attached.original
    try:
        return getattr(model, method)
    except AttributeError:  # e.g. a pipeline whose last step lacks it
        return None


def _try(estimator: Any, method: str, inputs: Any) -> Any:
    try:
        return getattr(estimator, method)(inputs)
    except Exception:  # e.g. SVC(probability=False) exposes the method but cannot answer
        return None


def _try_call(function: Any, inputs: Any) -> Any:
    try:
        return function(inputs)
    except Exception:  # e.g. SVC(probability=False) exposes the method but cannot answer
        return None


_features: dict[tuple[str, bytes], types.ModuleType | None] = {}
_scorers: dict[tuple[str, bytes, int], Scorer] = {}
_lock = threading.Lock()
#: Compiled versions kept for predict(package, frame, model=...) calls (each holds its model).
KEEP = 8


def features_module(folder: Path, *, verified: bool = False) -> types.ModuleType | None:
    """The package version's features.py as a module (None when it has none), loaded once per version
    and manifest: the version is verified first unless the caller just did (``verified=True``)."""
    from mlops_nb.deploy.script.load import load_script_file
    from mlops_nb.deploy.verify import verify

    key = (str(folder), (folder / MANIFEST).read_bytes())
    with _lock:
        if key not in _features:
            if not verified:
                verify(folder)
            path = folder / FEATURES_FILE
            _features[key] = load_script_file(path) if path.is_file() else None
        return _features[key]


def compile_version(folder: Path, model: Any, *, verified: bool = False) -> Scorer:
    """``folder``'s version compiled around its loaded ``model`` (features.py verified first unless
    the caller just verified the version)."""
    return Scorer(folder, model, read_schema(folder), features_module(folder, verified=verified))


def scorer_for(folder: Path, model: Any, *, verified: bool = False) -> Scorer:
    """The compiled version for ``folder`` and ``model``, kept across calls (keyed by the version's
    manifest, so a folder whose files were replaced is compiled again)."""
    key = (str(folder), (folder / MANIFEST).read_bytes(), id(model))
    with _lock:
        found = _scorers.get(key)
    if found is not None and found.model is model:
        return found
    scorer = compile_version(folder, model, verified=verified)
    with _lock:
        while len(_scorers) >= KEEP:
            _scorers.pop(next(iter(_scorers)))
        _scorers[key] = scorer
    return scorer
