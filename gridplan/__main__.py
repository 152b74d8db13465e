"""``python -m gridplan …`` is the ``gridplan`` command (useful where the script is not on PATH)."""

from gridplan.cli import main

if __name__ == "__main__":
    main()
