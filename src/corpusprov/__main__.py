"""``python -m corpusprov``."""

from corpusprov.cli import main

# Guarded: worker processes (spawn) import the parent's main module as `__mp_main__`,
# and must not run the CLI again.
if __name__ == "__main__":
    main()
