"""examples/quickstart.ipynb runs top to bottom (nbclient, ipykernel) and shows rich results.

The committed notebook has no outputs. The test executes a copy in a ``python3`` kernel of this
interpreter, with one extra cell at the end that writes the secrets the run produced (tokens in
the cluster's Secrets, gateway keys, the fake principal's secret) to a file, and checks that
none of them appears in any output of the notebook's own cells.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"

# Appended to the copy that runs: collects what must never be displayed.
_COLLECT = """
import base64, json
secrets = set()
for secret in kube.list_objects("v1", "Secret", spec.namespace):
    for encoded in (secret.get("data") or {}).values():
        text = base64.b64decode(encoded).decode().strip()
        if "&" in text:
            bare = text.removeprefix("GatewayKey ").strip()
            secrets.update({text, bare, bare.rsplit("&", 1)[-1]})
secrets.add(apim.principal.client_secret.get_secret_value())
secrets.add(cluster.admin_token.get_secret_value())
keys = management.list_keys(spec.gateway)
secrets.update({keys.primary.get_secret_value(), keys.secondary.get_secret_value()})
with open(SECRETS_FILE, "w") as handle:
    json.dump(sorted(secrets), handle)
"""


def _ensure_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix"],
            check=True,
            capture_output=True,
        )


def _outputs_text(cell: Any) -> str:
    parts: list[str] = []
    for output in cell.get("outputs", []):
        if "text" in output:
            parts.append(output["text"])
        for value in (output.get("data") or {}).values():
            parts.append(value if isinstance(value, str) else json.dumps(value))
        parts.extend(output.get("traceback", []))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[str]]:
    _ensure_kernel()
    secrets_file = tmp_path_factory.mktemp("nb") / "secrets.json"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel state is still there before the last (cleanup) cell: collect before it.
    collect = nbformat.v4.new_code_cell(f"SECRETS_FILE = {str(secrets_file)!r}\n" + _COLLECT)
    collect["id"] = "test-collect-secrets"
    nb.cells.insert(len(nb.cells) - 1, collect)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on any error
    return nb, json.loads(secrets_file.read_text())


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.id
            assert cell.execution_count is None, cell.id
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebook_runs_and_shows_rich_results(executed: tuple[Any, list[str]]) -> None:
    nb, _ = executed
    by_id = {cell.id: cell for cell in nb.cells if cell.cell_type == "code"}
    markdown = {
        cell_id: "".join(
            o["data"]["text/markdown"]
            for o in cell.outputs
            if "text/markdown" in (o.get("data") or {})
        )
        for cell_id, cell in by_id.items()
    }
    assert "| severity | rule |" in markdown["lint"]  # the portal example's findings
    assert "**Plan**" in markdown["plan"]
    assert "| object | action |" in markdown["deploy"]
    assert "**ok**" in markdown["verify"]
    assert "**warning**" in markdown["forward"]
    assert ": rotated" in markdown["rotate"]
    assert "FAILED" in markdown["broken"]
    assert "rolled back to the previous pod template" in _outputs_text(by_id["broken"])
    assert "refused:" in _outputs_text(by_id["refuse"])
    # deploy rolls every object back (not only the pod template): verify is healthy right after.
    assert "**ok**" in markdown["after-rollback"]
    assert "**ok**" in markdown["redeploy"]


def test_notebook_displays_no_secret(executed: tuple[Any, list[str]]) -> None:
    nb, secrets = executed
    # The token in use (three forms), two keys, the principal's secret, the kube admin token; the
    # earlier token's Secret is cleaned up by the end, so the pattern check below covers it.
    assert len(secrets) >= 7
    shown = "\n".join(_outputs_text(cell) for cell in nb.cells if cell.id != "test-collect-secrets")
    assert not re.search(r"&\d{12}&[A-Za-z0-9+/]{8}", shown)  # no gateway token of any age
    for secret in secrets:
        assert secret not in shown
