"""Griffe extension that tidies the API reference of the pydantic models.

* ``griffe_pydantic`` labels every class attribute of a model as a field, including validators
  bound to private names (``_v_labels = field_validator(...)(...)``), which have no annotation
  and break its field table. Those private attributes are dropped from the documented members.
* Docstrings written with Sphinx roles (``:class:`~apim_selfhosted.models.Gateway```) are
  shown as code (``Gateway``) instead of as raw role text.
* The project's docstrings head their doctests ``Example:``; griffe's Google parser reads only
  ``Examples:`` as an examples section (``Example:`` becomes an admonition whose ``>>>`` lines
  are parsed as Markdown). The heading is renamed so the examples render as Python sessions.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")


def _role_to_code(match: re.Match[str]) -> str:
    target = match["target"]
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
    return f"`{shown}`"


class TidyExtension(griffe.Extension):
    """Drops private pseudo-fields and turns Sphinx roles into inline code."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Cleans every object of the loaded package."""
        self._clean(pkg)

    def _clean(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            text = _ROLE.sub(_role_to_code, obj.docstring.value)
            obj.docstring.value = _EXAMPLE_HEADING.sub(r"\g<indent>Examples:", text)
        for name, member in list(obj.members.items()):
            if member.is_alias:
                continue
            if (
                obj.is_class
                and member.is_attribute
                and name.startswith("_")
                and getattr(member, "annotation", None) is None
            ):
                del obj.members[name]
                continue
            assert isinstance(member, griffe.Object)
            self._clean(member)
