"""MkDocs hook: replaces ``<!-- profile-rules -->`` with a table of the production profile's rules.

The table is built from ``apim_selfhosted.profile.RULES`` at every build, so the documented
rule ids, default severities and reasons are always those of the code.
"""

from __future__ import annotations

import re
from typing import Any

_MARKER = re.compile(r"^<!--\s*profile-rules\s*-->\s*$", re.MULTILINE)


def _table() -> str:
    from apim_selfhosted.profile import RULES

    rows = ["| Rule | Default severity | Why it matters |", "|---|---|---|"]
    for rule, (severity, why) in RULES.items():
        escaped = why.replace("|", "\\|")
        rows.append(f"| `{rule}` | {severity} | {escaped} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Expands the profile-rules marker of a page into the rules table."""
    if not _MARKER.search(markdown):
        return markdown
    return _MARKER.sub(lambda _: _table(), markdown)
