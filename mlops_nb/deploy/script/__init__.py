"""retrain.py from a run's recorded cells: clean them (``clean``), plan the script (``plan``), write
its text (``render``), and load a written one as a module (``load``)."""
