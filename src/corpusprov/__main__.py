"""``python -m corpusprov``."""

from corpusprov.cli import main

main()
