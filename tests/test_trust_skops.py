"""skops' default trusted types are the same when mlops-nb imports skops.io with its one-pass ufunc
scan (mlops_nb/deploy/skops_scan.py) as after a plain ``import skops.io``, in a fresh interpreter
that imported what the retraining job imports first; so the same types are trusted and refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run as `python -c` in a fresh interpreter: the job's imports, then skops.io (argv[1]: fast or
# plain), then every default list skops computed, and what it says of dumps that need a scipy
# ufunc, a numpy ufunc and an untrusted function.
PROBE = """
import json, sys
import numpy as np, pandas, scipy.special, sklearn.linear_model, mlops_nb.deploy.retrain
if sys.argv[1] == "fast":
    from mlops_nb.deploy.skops_scan import fast_scan_used, import_skops_io
    sio = import_skops_io()
    used = fast_scan_used()
else:
    import skops.io as sio
    used = False
from operator import add
from skops.io import _trusted_types, _utils
from sklearn.preprocessing import FunctionTransformer
lists = {k: [x if isinstance(x, str) else f"{x.__module__}.{x.__qualname__}" for x in v]
         for k, v in vars(_trusted_types).items() if k.isupper() and isinstance(v, list)}
models = {"scipy": FunctionTransformer(scipy.special.expit), "numpy": FunctionTransformer(np.log1p),
          "untrusted": FunctionTransformer(add)}
untrusted = {k: sio.get_untrusted_types(data=sio.dumps(m)) for k, m in models.items()}
refused = []
for k, m in models.items():
    try:
        sio.loads(sio.dumps(m))
    except Exception as exc:
        refused.append(k)
print(json.dumps({"used": used, "restored": _utils.get_public_type_names.__module__ == "skops.io._utils",
                  "lists": lists, "untrusted": untrusted, "refused": refused}))
"""


def _probe(mode: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-P", "-c", PROBE, mode], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT)
    return json.loads(done.stdout)


def test_the_one_pass_scan_gives_skops_its_own_trusted_lists_and_verdicts():
    fast, plain = _probe("fast"), _probe("plain")
    assert fast["used"] and fast["restored"]  # skops' own function is back once skops.io is imported
    assert set(fast["lists"]) >= {"SKLEARN_ESTIMATOR_TYPE_NAMES", "SCIPY_UFUNC_TYPE_NAMES", "NUMPY_UFUNC_TYPE_NAMES"}
    assert len(plain["lists"]["SCIPY_UFUNC_TYPE_NAMES"]) > 100
    assert fast["lists"] == plain["lists"]
    assert fast["untrusted"] == plain["untrusted"] and fast["untrusted"]["untrusted"] == ["_operator.add"]
    assert fast["refused"] == plain["refused"] == ["untrusted"]
    # off by the environment, and then skops computes the lists itself
    off = _probe("fast", MLOPS_NB_SKOPS_SCAN="0")
    assert not off["used"] and off["lists"] == plain["lists"]


def test_public_type_names_matches_skops_where_modules_are_unusual(monkeypatch):
    """Earlier in sys.modules than scipy.special: a module whose __getattr__ hands out a ufunc, a
    plain module holding one under its name, and one holding another object under a ufunc's name."""
    import numpy as np
    import scipy.special
    from skops.io._utils import get_public_type_names

    from mlops_nb.deploy.skops_scan import public_type_names

    def lazy(name: str) -> object:
        if name == "erf":
            return scipy.special.erf
        raise AttributeError(name)

    hooked = types.ModuleType("scipy.hooked")
    hooked.__getattr__ = lazy  # PEP 562: asked for what its __dict__ does not hold
    holder = types.ModuleType("scipy.holder")
    holder.expit = scipy.special.expit
    decoy = types.ModuleType("scipy.decoy")
    decoy.gamma = "not the ufunc"

    class Odd(types.ModuleType):
        def __getattribute__(self, name):
            return scipy.special.logit if name == "logit" else super().__getattribute__(name)

    odd = Odd("scipy.odd")
    saved = dict(sys.modules)
    try:
        sys.modules.clear()
        sys.modules.update({"scipy.hooked": hooked, "scipy.holder": holder, "scipy.decoy": decoy, "scipy.odd": odd,
                            "__main__": holder, "nothing": None, **saved})
        expected = get_public_type_names(module=scipy.special, oftype=np.ufunc)
        got = public_type_names(scipy.special, np.ufunc)
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
    assert got == expected
    assert {"scipy.hooked.erf", "scipy.holder.expit", "scipy.odd.logit"} <= set(got)
    assert public_type_names(np, np.ufunc) == get_public_type_names(module=np, oftype=np.ufunc)


@pytest.mark.parametrize("source", ["reviewed", "changed"])
def test_the_scan_is_used_only_over_the_reviewed_skops_source(source, monkeypatch):
    from mlops_nb.deploy import skops_scan

    if source == "changed":
        monkeypatch.setattr(skops_scan, "REVIEWED_SOURCE", "0" * 64)
    finder = skops_scan._Finder()
    import skops.io._utils as utils

    original = utils.get_public_type_names
    try:
        finder.find_spec("skops.io._trusted_types", None)
        assert (utils.get_public_type_names is not original) == (source == "reviewed")
    finally:
        utils.get_public_type_names = original


# A fresh interpreter that imports what a job imports, then skops.io given a package version folder
# (argv[2]; "-" for none): whether the recorded estimator list was used, skops' lists, and whether
# scikit-learn modules only all_estimators() imports (sklearn.datasets, sklearn.mixture) got loaded.
RECORDED_PROBE = """
import json, sys
from pathlib import Path
import numpy as np, pandas, sklearn.linear_model, mlops_nb.deploy.retrain
from mlops_nb.deploy.skops_scan import import_skops_io, recorded_list_used
import_skops_io(None if sys.argv[1] == "-" else Path(sys.argv[1]))
from skops.io import _trusted_types
import sklearn.utils
lists = {k: [x if isinstance(x, str) else f"{x.__module__}.{x.__qualname__}" for x in v]
         for k, v in vars(_trusted_types).items() if k.isupper() and isinstance(v, list)}
print(json.dumps({"used": recorded_list_used(), "lists": lists,
                  "restored": sklearn.utils.all_estimators.__module__ == "sklearn.utils.discovery",
                  "walked": [m for m in ("sklearn.datasets", "sklearn.mixture") if m in sys.modules]}))
"""


def _recorded_probe(folder: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-P", "-c", RECORDED_PROBE, folder], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT)
    return json.loads(done.stdout)


def test_a_packages_recorded_estimator_list_gives_skops_the_same_lists_without_importing_all_of_sklearn(tmp_path):
    from mlops_nb.deploy.layout import SKOPS_DEFAULTS_FILE
    from mlops_nb.deploy.skops_scan import estimator_record

    record = estimator_record()  # what export writes
    assert record["skops"] and record["scikit-learn"] and len(record["estimators"]) > 150
    version = tmp_path / "v0001"
    version.mkdir()
    (version / SKOPS_DEFAULTS_FILE).write_text(json.dumps(record))
    recorded, plain = _recorded_probe(str(version)), _recorded_probe("-")
    assert recorded["used"] and not plain["used"]
    assert recorded["lists"] == plain["lists"]  # so skops trusts and refuses exactly the same types
    assert recorded["restored"]  # scikit-learn's own all_estimators is back once skops.io is imported
    assert recorded["walked"] == [] and plain["walked"] == ["sklearn.datasets", "sklearn.mixture"]

    # recorded with other library versions, or naming anything but scikit-learn classes: skops computes it
    for changed in ({**record, "scikit-learn": "0.0.1"}, {**record, "skops": "0.0.1"},
                    {**record, "estimators": [*record["estimators"], "os.system"]}, {**record, "format": 2}):
        (version / SKOPS_DEFAULTS_FILE).write_text(json.dumps(changed))
        assert not _recorded_probe(str(version))["used"]
    (version / SKOPS_DEFAULTS_FILE).write_text("{not json")
    assert not _recorded_probe(str(version))["used"]


SCIPY_PROBE = """
import json, sys
from mlops_nb.deploy.scipy_docs import skip_docstring_tables, skipped
replaced = skip_docstring_tables()
import sklearn.linear_model, scipy.stats, scipy._lib._array_api as api
import numpy as np
rng = np.random.default_rng(0)
ks = scipy.stats.ks_2samp(rng.normal(size=500), rng.normal(0.3, size=500))
print(json.dumps({"replaced": replaced, "skipped": skipped(), "ks": [float(ks.statistic), float(ks.pvalue)],
                  "doc": scipy.stats.ks_2samp.__doc__, "capabilities": len(api.xp_capabilities_table)}))
"""


def _scipy_probe(**env: str) -> dict:
    done = subprocess.run([sys.executable, "-P", "-c", SCIPY_PROBE], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT)
    return json.loads(done.stdout)


def test_a_job_imports_scipy_without_its_docstring_tables_and_computes_the_same():
    fast, built = _scipy_probe(), _scipy_probe(MLOPS_NB_SCIPY_DOCS="1")
    assert fast["replaced"] and fast["skipped"] and not built["replaced"]
    assert fast["ks"] == built["ks"]  # the same functions, the same answers
    assert fast["capabilities"] == built["capabilities"] > 100  # each function's capabilities still recorded
    # the docstring is the function's own, without the table of array libraries appended to it
    assert "Array API Standard Support" in built["doc"] and "Array API Standard Support" not in fast["doc"]
    assert fast["doc"].split("\n")[0].strip() == built["doc"].split("\n")[0].strip()


def test_the_scipy_docstring_skip_needs_the_reviewed_source_and_an_early_call(monkeypatch):
    from mlops_nb.deploy import scipy_docs

    monkeypatch.setattr(scipy_docs, "_skipped", False)
    monkeypatch.setattr(scipy_docs, "REVIEWED_SOURCE", "0" * 64)
    monkeypatch.delitem(sys.modules, "scipy.stats", raising=False)
    monkeypatch.delitem(sys.modules, "scipy.special", raising=False)
    assert not scipy_docs.skip_docstring_tables()  # another scipy's decorator: left alone
    import scipy.stats  # noqa: F401

    monkeypatch.undo()
    monkeypatch.setattr(scipy_docs, "_skipped", False)
    assert "scipy.stats" in sys.modules and not scipy_docs.skip_docstring_tables()  # too late: already built
