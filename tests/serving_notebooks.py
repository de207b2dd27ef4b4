"""Notebooks whose packages are served: run in a real kernel through export, each leaving in its
folder the rows the data stage started from and the notebook's own predictions on them.

- :func:`mixed_types`: adapted from scikit-learn's ``plot_column_transformer_mixed_types.py`` on
  generated titanic-like rows (numbers and strings, missing values); its features cell adds
  ``family_size`` and turns ``pclass`` into strings in place; a ColumnTransformer pipeline.
- :func:`regression`: ``load_diabetes`` with a features cell adding ``bmi_bp``; a Ridge pipeline.

Each returns a :class:`Served`: the folder, the store, the package root, the raw rows
(``raw.csv``: the data stage's rows without the target), the model's input (``model_input.pkl``)
and the notebook's predictions on those rows (``expected.pkl``: ``prediction`` and, for the
classifier, ``probability_<class>`` columns). The serving tests of other modules may reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from notebook_helpers import notebook, run_notebook

SETUP = "%load_ext mlops_nb\n%mlops start {name}\n%mlops require {gate} --target {target}"
SAVE = """import numpy as np
raw_rows = pd.read_csv("{data}").drop(columns=["{target}"])
raw_rows.to_csv("raw.csv", index=False)
X.to_pickle("model_input.pkl")
expected = pd.DataFrame({{"prediction": {model}.predict(X)}}, index=X.index)
if hasattr({model}, "predict_proba"):
    for i, label in enumerate({model}.classes_):
        expected[f"probability_{{label}}"] = {model}.predict_proba(X)[:, i]
expected.to_pickle("expected.pkl")"""


@dataclass
class Served:
    folder: Path
    store: Path
    package: Path
    name: str
    target: str


def titanic_rows(n: int = 600, seed: int = 0):
    """Titanic-like rows: numbers and strings, missing ages, fares and ports, a learnable target."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    pclass = rng.choice([1, 2, 3], n, p=[0.25, 0.25, 0.5])
    sex = rng.choice(["male", "female"], n)
    age = np.round(rng.normal(30, 14, n).clip(0.5, 80), 1)
    age[rng.random(n) < 0.2] = np.nan
    sibsp = rng.poisson(0.5, n)
    parch = rng.poisson(0.4, n)
    fare = np.round(rng.gamma(2.0, 40 / pclass), 4)
    fare[rng.random(n) < 0.02] = np.nan
    embarked = rng.choice(["S", "C", "Q"], n, p=[0.7, 0.2, 0.1]).astype(object)
    embarked[rng.random(n) < 0.03] = np.nan
    score = 1.5 * (sex == "female") - 0.8 * (pclass - 2) - 0.02 * np.nan_to_num(age, nan=30) + rng.normal(0, 1, n)
    survived = (score > np.median(score)).astype(int)
    return pd.DataFrame({"pclass": pclass, "survived": survived, "name": [f"passenger {i}" for i in range(n)],
                         "sex": sex, "age": age, "sibsp": sibsp, "parch": parch, "fare": fare, "embarked": embarked})


MIXED_FEATURES = """%%stage features
titanic["family_size"] = titanic["sibsp"] + titanic["parch"] + 1
titanic["pclass"] = titanic["pclass"].astype(str)
X = titanic.drop(columns=["survived", "name"])
y = titanic["survived"]"""

MIXED_MODEL = """%%stage model
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

numeric_features = ["age", "fare", "family_size"]
numeric_transformer = Pipeline(steps=[("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())])
categorical_features = ["embarked", "sex", "pclass"]
categorical_transformer = Pipeline(steps=[
    ("imputer", SimpleImputer(strategy="constant", fill_value="missing")),
    ("encoder", OneHotEncoder(handle_unknown="ignore")),
])
preprocessor = ColumnTransformer(transformers=[
    ("num", numeric_transformer, numeric_features),
    ("cat", categorical_transformer, categorical_features),
])
clf = Pipeline(steps=[("preprocessor", preprocessor), ("classifier", LogisticRegression())])
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
clf.fit(X_train, y_train)"""


def mixed_types_cells(features: str = MIXED_FEATURES, export: bool = True) -> list[str]:
    cells = [
        SETUP.format(name="titanic", gate="f1 >= 0.5", target="survived"),
        "import pandas as pd",
        "%%stage data\ntitanic = pd.read_csv('titanic.csv')",
        features,
        MIXED_MODEL,
        "%%stage validation\nfrom sklearn.metrics import f1_score\n\nf1 = f1_score(y_test, clf.predict(X_test))",
        "%mlops register clf --name titanic",
    ]
    if export:
        cells += ["%mlops export titanic --to deploy/titanic",
                  SAVE.format(data="titanic.csv", target="survived", model="clf")]
    return cells


def mixed_types(folder: Path) -> Served:
    """The mixed-type notebook, run and exported in ``folder``."""
    titanic_rows().to_csv(folder / "titanic.csv", index=False)
    run_notebook(notebook(mixed_types_cells()), folder, store=folder / "mlops.db", timeout=300)
    return Served(folder, folder / "mlops.db", folder / "deploy" / "titanic", "titanic", "survived")


REGRESSION_CELLS = [
    SETUP.format(name="diabetes", gate="r2 >= 0.3", target="target"),
    "import pandas as pd",
    "%%stage data\ndf = pd.read_csv('diabetes.csv')",
    "%%stage features\ndf['bmi_bp'] = df['bmi'] * df['bp']\nX = df.drop(columns=['target'])\ny = df['target']",
    "%%stage model\nfrom sklearn.linear_model import Ridge\nfrom sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)\n"
    "reg = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X_train, y_train)",
    "%%stage validation\nfrom sklearn.metrics import r2_score\n\nr2 = r2_score(y_test, reg.predict(X_test))",
    "%mlops register reg --name diabetes",
    "%mlops export diabetes --to deploy/diabetes",
    SAVE.format(data="diabetes.csv", target="target", model="reg"),
]


def regression(folder: Path) -> Served:
    """The diabetes regression notebook, run and exported in ``folder``."""
    from sklearn.datasets import load_diabetes

    load_diabetes(as_frame=True).frame.to_csv(folder / "diabetes.csv", index=False)
    run_notebook(notebook(REGRESSION_CELLS), folder, store=folder / "mlops.db", timeout=300)
    return Served(folder, folder / "mlops.db", folder / "deploy" / "diabetes", "diabetes", "target")
