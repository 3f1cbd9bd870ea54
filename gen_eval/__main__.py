"""``python -m gen_eval``: the ``gen-eval`` command (for environments whose scripts folder is not on PATH)."""

from gen_eval.cli import main

if __name__ == "__main__":
    main()
