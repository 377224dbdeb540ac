"""KubeEmulator contract: watch.

Statements from the API concepts page ("Efficient detection of changes", "Watch bookmarks",
"Resource versions", "410 Gone responses"): a watch from a resourceVersion delivers every change
after it, ``timeoutSeconds`` ends the stream, bookmarks carry only a resourceVersion, and a
version that is too old gets an ERROR event with a 410 Status.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from apim_selfhosted.testing import KubeEmulator

_counter = itertools.count()


@pytest.fixture(scope="module")
def api(kube_emulator_module: KubeEmulator) -> client.ApiClient:
    return kube_emulator_module.api_client()


@pytest.fixture
def ns(api: client.ApiClient) -> str:
    name = f"watch-{next(_counter)}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def _raw_watch(api: client.ApiClient, path: str) -> list[dict[str, Any]]:
    """The decoded lines of a watch stream (until the server ends it)."""
    request = api.param_serialize(
        "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    response = api.call_api(*request, _request_timeout=30)
    events = []
    for line in response.response.stream(1024 * 64):
        for part in line.splitlines():
            if part.strip():
                events.append(json.loads(part))
    return events


def test_watch_from_a_resource_version_sees_every_later_change(
    api: client.ApiClient, ns: str
) -> None:
    """A watch started at a resourceVersion receives all changes after it, in order."""
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("a"))
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("a", ns)
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1
        )
    ]
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_without_a_version_starts_with_the_current_state(
    api: client.ApiClient, ns: str
) -> None:
    """A watch without resourceVersion first sends ADDED for every existing object."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("x"))
    core.create_namespaced_config_map(ns, _cm("y"))
    events = _raw_watch(api, f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "x"),
        ("ADDED", "y"),
    ]


def test_watch_sees_changes_made_while_it_runs(api: client.ApiClient, ns: str) -> None:
    """Changes made after the watch started are streamed as they happen."""
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    w = watch.Watch()
    names: list[str] = []
    started = threading.Event()

    def consume() -> None:
        stream = w.stream(
            core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=10
        )
        started.set()
        for event in stream:
            names.append(event["object"].metadata.name)
            if len(names) == 2:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    started.wait(5)
    core.create_namespaced_config_map(ns, _cm("live-1"))
    core.create_namespaced_config_map(ns, _cm("live-2"))
    thread.join(10)
    assert names == ["live-1", "live-2"]


def test_label_selector_watch_reports_objects_leaving_the_selection(
    api: client.ApiClient, ns: str
) -> None:
    """An object that stops matching the selector is sent as DELETED to that watch."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("sel", team="a"))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map("sel", ns, {"metadata": {"labels": {"team": "b"}}})
    events = _raw_watch(
        api,
        f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=1"
        f"&labelSelector=team%3Da&resourceVersion={rv}",
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "sel")]


def test_bookmarks_carry_only_the_resource_version(
    kube_emulator_module: KubeEmulator, api: client.ApiClient, ns: str
) -> None:
    """With allowWatchBookmarks, idle watches get BOOKMARK events holding a resourceVersion."""
    interval = kube_emulator_module.api.bookmark_interval
    kube_emulator_module.api.bookmark_interval = 0.05
    try:
        events = _raw_watch(
            api,
            f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=1"
            f"&allowWatchBookmarks=true&resourceVersion="
            f"{client.CoreV1Api(api).list_namespaced_config_map(ns).metadata.resource_version}",
        )
    finally:
        kube_emulator_module.api.bookmark_interval = interval
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks
    assert set(bookmarks[0]["object"]["metadata"]) == {"resourceVersion"}
    assert bookmarks[0]["object"]["kind"] == "ConfigMap"


def test_too_old_resource_version_is_a_410_error_event(api: client.ApiClient) -> None:
    """A watch from a compacted resourceVersion gets an ERROR event with a 410 Expired Status."""
    with KubeEmulator(controllers=False, history=5) as small:
        small_api = small.api_client()
        core = client.CoreV1Api(small_api)
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(10):
            core.create_namespaced_config_map("default", _cm(f"c{i}"))
        events = _raw_watch(
            small_api, f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
        )
        assert len(events) == 1
        assert events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
        with pytest.raises(ApiException) as info:
            list(
                watch.Watch().stream(
                    core.list_namespaced_config_map, "default", resource_version=rv
                )
            )
        assert info.value.status == 410


def test_watch_list_sends_initial_events_and_an_end_bookmark(
    api: client.ApiClient, ns: str
) -> None:
    """sendInitialEvents=true streams the current state, then a bookmark annotated
    k8s.io/initial-events-end (the protocol kubectl's reflectors use)."""
    client.CoreV1Api(api).create_namespaced_config_map(ns, _cm("init"))
    events = _raw_watch(
        api,
        f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=1&sendInitialEvents=true"
        "&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
    )
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


def test_dropped_watch_ends_the_stream(kube_emulator_module: KubeEmulator, ns: str) -> None:
    """An injected watch drop ends open streams, as an API server restart would."""
    api = kube_emulator_module.api_client()
    result: list[list[dict[str, Any]]] = []
    thread = threading.Thread(
        target=lambda: result.append(
            _raw_watch(api, f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=30")
        )
    )
    thread.start()
    for _ in range(200):
        if kube_emulator_module.drop_watches("configmaps", namespace=ns):
            break
        threading.Event().wait(0.01)
    thread.join(10)
    assert not thread.is_alive()
    assert result == [[]]


def test_a_client_that_hangs_up_ends_its_watch(kube_emulator_module: KubeEmulator, ns: str) -> None:
    """When the client closes the connection, the server ends the watch (no leaked stream)."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    kube = kube_emulator_module
    url = urlsplit(kube.url)
    context = ssl.create_default_context(cadata=(kube.ca_pem or b"").decode())
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=context)
    conn.request(
        "GET",
        f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=60",
        headers={"Authorization": f"Bearer {kube.admin_token.get_secret_value()}"},
    )
    assert conn.getresponse().status == 200
    assert kube.open_watches("configmaps", namespace=ns) == 1
    conn.close()
    for _ in range(100):  # the server notices within its idle check (about 2 s)
        if kube.open_watches("configmaps", namespace=ns) == 0:
            break
        threading.Event().wait(0.1)
    assert kube.open_watches("configmaps", namespace=ns) == 0
