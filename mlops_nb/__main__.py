"""``python -m mlops_nb ...``: the ``mlops-nb`` command line. Schedulers run
``python -m mlops_nb retrain PACKAGE``, which verifies the package before any of its code is loaded."""

from mlops_nb.cli import main

if __name__ == "__main__":
    main(prog_name="mlops-nb")
