"""`python -m api.cli`: the `hpo` command, for a checkout without the console script."""

from __future__ import annotations

from api.cli import main

if __name__ == "__main__":
    main()
