"""``mlops-nb retrain``: the same click command as an exported retrain.py runs (options, help, exit
statuses), in a module of its own so cron's ``python -m mlops_nb retrain`` imports no other command."""

from mlops_nb.cli.main import main
from mlops_nb.deploy.retrain.command import retrain_command

main.add_command(retrain_command(), name="retrain")
