"""``python -m mlharbor.cli`` runs the command line (same as the ``mlharbor`` script)."""

from mlharbor.cli.main import main

main()
