"""``python -m apim_selfhosted``: the ``apim-selfhosted`` command.

Example:
    >>> import apim_selfhosted.__main__  # importing does not run the command
"""

from __future__ import annotations

from apim_selfhosted.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
