"""An in-process IPython shell with mlops-nb loaded, and the stage cells of a small churn lifecycle:
tests that need stage records but not a kernel use it (milliseconds instead of seconds)."""

from __future__ import annotations

from mlops_nb.notebook import magics
from mlops_nb.notebook.session import forget_session, session_for

DATA = """%%stage data
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
df = pd.DataFrame({"age": rng.integers(18, 80, 200), "income": rng.normal(50, 15, 200).round(1)})
df["churned"] = (df["income"] + rng.normal(0, 10, 200) < 45).astype(int)
"""
FEATURES = """%%stage features
X = df[["age", "income"]]
y = df["churned"]
"""
MODEL = """%%stage model
from sklearn.linear_model import LogisticRegression

clf = LogisticRegression(C={C}).fit(X, y)
"""
VALIDATION = """%%stage validation
from sklearn.metrics import f1_score

f1 = f1_score(y, clf.predict(X))
"""


class Shell:
    """A real IPython shell in this process with mlops-nb loaded and a fresh session: stage cells
    are recorded exactly as in a kernel (same transformer and events), in milliseconds."""

    def __init__(self, store, folder):
        from IPython.testing.globalipapp import get_ipython  # the one shared test shell (see test_widgets)

        self.shell = get_ipython()
        self.shell.reset(new_session=False)
        forget_session(self.shell)
        magics.load(self.shell)
        self.store = store
        self.folder = folder

    def run(self, source: str, *, check: bool = True):
        """Run one cell; raise what it raised when ``check``."""
        result = self.shell.run_cell(source, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if check and error is not None:
            raise error
        return result

    def lifecycle(self, project="churn", *, threshold=0.5, C=1.0, target="churned"):
        self.run(f"%mlops start {project} --store {self.store}")
        self.run(f"%mlops require f1 >= {threshold} --target {target}")
        for cell in (DATA, FEATURES, MODEL.format(C=C), VALIDATION):
            self.run(cell)
        return session_for(self.shell).run

    def close(self):
        session = forget_session(self.shell)
        if session is not None and session.run is not None and session.run.status == "running":
            session.run.end("finished")
        magics.unload(self.shell)
        self.shell.reset(new_session=False)
