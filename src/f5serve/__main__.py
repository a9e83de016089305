"""``python -m f5serve`` runs the command line."""

from f5serve.cli import main

main()
