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
