"""``infratech preview|up|destroy|outputs`` and ``infratech backend``: the Automation API replaced
by a recorder (no Pulumi CLI here), the state bucket made on a local S3 stand-in (moto's server)."""

from __future__ import annotations

import io
import socket
import types

import pytest

from infratech import cli
from infratech.cli import deploy
from infratech.cli.backend import ensure_bucket
from infratech.state import describe, s3_url
from pulumi.automation.events import EngineEvent
from workloads.progress import Progress


class CommandError(Exception):
    pass


def _step(op, name):
    urn = f"urn:pulumi:ovh-gra11::infratech::kubernetes:core/v1:Namespace::{name}"
    return {"metadata": {"op": op, "urn": urn, "type": "kubernetes:core/v1:Namespace", "provider": ""}}


# what the Pulumi CLI streams to the Automation API's on_event during an up (engine event JSON,
# pulumi/sdk/python/lib/pulumi/automation/events.py), for two resources then the summary
ENGINE_EVENTS = [
    {"sequence": 1, "timestamp": 1, "resourcePreEvent": _step("create", "team-a")},
    {"sequence": 2, "timestamp": 2, "resOutputsEvent": _step("create", "team-a")},
    {"sequence": 3, "timestamp": 3, "resourcePreEvent": _step("same", "team-b")},
    {"sequence": 4, "timestamp": 4, "resOutputsEvent": _step("same", "team-b")},
    {"sequence": 5, "timestamp": 5, "summaryEvent": {"maybeCorrupt": False, "durationSeconds": 4,
                                                     "resourceChanges": {"create": 1, "same": 40, "update": 0}}},
]


class AutomationRecorder:
    """Test double of ``pulumi.automation`` (the Pulumi CLI cannot be installed here): records the
    calls, knows which stacks exist in the backend, and refuses to select a missing one as the CLI
    does ("no stack named … found")."""

    errors = types.SimpleNamespace(CommandError=CommandError)

    def __init__(self, existing=()):
        self.calls: list[tuple] = []
        self.existing = set(existing)

    def LocalWorkspaceOptions(self, **kwargs):  # noqa: N802 - the Automation API's name
        return kwargs

    def create_or_select_stack(self, stack_name, work_dir, opts):
        self.calls.append(("create_or_select_stack", stack_name, opts))
        self.existing.add(stack_name)
        return _Stack(self, stack_name)

    def select_stack(self, stack_name, work_dir, opts):
        self.calls.append(("select_stack", stack_name, opts))
        if stack_name not in self.existing:
            raise CommandError(f"error: no stack named '{stack_name}' found")
        return _Stack(self, stack_name)


class _Stack:
    def __init__(self, api, name):
        self.api, self.name = api, name

    def up(self, on_output, on_event=None):
        self.api.calls.append(("up", self.name))
        on_output("Updating (ovh-gra11):")
        for event in ENGINE_EVENTS if on_event else ():
            on_event(EngineEvent.from_json(event))
        out = types.SimpleNamespace(value="GRA11", secret=False)
        return types.SimpleNamespace(outputs={"region": out, "kubeconfig": types.SimpleNamespace(value="k", secret=True)})

    def preview(self, on_output):
        self.api.calls.append(("preview", self.name))


@pytest.fixture
def pulumi_on_path(monkeypatch):
    monkeypatch.setattr(deploy.shutil, "which", lambda name: "/usr/local/bin/pulumi")


def test_the_first_up_creates_the_stack_in_the_backend_named(project, pulumi_on_path, monkeypatch, tmp_path):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    api = AutomationRecorder()
    outputs = deploy.run(project, "ovh-gra11", "up", echo=lambda _: None, api=api)
    assert outputs == {"kubeconfig": "[secret]", "region": "GRA11"}
    kind, name, opts = api.calls[0]
    assert (kind, name) == ("create_or_select_stack", "ovh-gra11")
    assert opts["env_vars"] == {"PULUMI_BACKEND_URL": f"file://{tmp_path}"}
    deploy.run(project, "ovh-gra11", "preview", echo=lambda _: None, api=api)  # now it exists: selected
    assert api.calls[-2][0] == "select_stack" and api.calls[-1] == ("preview", "ovh-gra11")


def test_up_with_progress_counts_resources_and_sums_up_what_changed(project, pulumi_on_path, monkeypatch, tmp_path):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    screen, pulumi_lines = io.StringIO(), []
    progress = Progress("up ovh-gra11", stream=screen, clock=lambda: 0.0)  # a still clock: no time in the lines to vary
    with progress.phase("up"):
        deploy.run(project, "ovh-gra11", "up", echo=pulumi_lines.append, api=AutomationRecorder(), progress=progress)
    progress.summary()
    lines = screen.getvalue().splitlines()
    assert pulumi_lines == ["Updating (ovh-gra11):"]  # Pulumi's own lines go to echo, not the screen
    assert "[up ovh-gra11] up: 0s · create team-a" in lines  # the resource in flight
    assert "[up ovh-gra11] up: done (2, 0s)" in lines  # resources done
    assert lines[-1] == "  changed: up: 40 same, 1 create"


def test_cli_up_shows_progress_and_keeps_pulumis_lines_in_the_log_it_names(project, pulumi_on_path, monkeypatch, tmp_path, capsys, default_plan):
    from infratech.cli.commands import deploy as deploy_command

    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    monkeypatch.setattr(deploy_command._plan, "record", lambda project, stack: default_plan)  # recorded once per session
    monkeypatch.setattr(deploy, "_automation", lambda: AutomationRecorder())
    monkeypatch.setattr(deploy, "log_file", lambda project, stack, action: tmp_path / f"{stack}-{action}.log")
    assert cli.main(["up", "ovh-gra11"]) == 0
    out = capsys.readouterr()
    log = tmp_path / "ovh-gra11-up.log"
    screen = out.err.splitlines()
    assert screen[0] == f"[up ovh-gra11] Pulumi's output: {log}"
    assert "[up ovh-gra11] up: done (2, " in out.err and screen[-1] == "  changed: up: 40 same, 1 create"
    assert log.read_text() == "Updating (ovh-gra11):\n" and "Updating" not in out.out + out.err
    assert '"region": "GRA11"' in out.out  # the outputs, as before


def test_preview_of_a_stack_not_created_yet_says_how_to_create_it(project, pulumi_on_path, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    with pytest.raises(deploy.DeployError, match=r"stack 'ovh-gra11' does not exist in file://.* yet: `infratech up ovh-gra11` creates it"):
        deploy.run(project, "ovh-gra11", "preview", echo=lambda _: None, api=AutomationRecorder())


def test_without_a_named_backend_up_uses_the_stacks_own_bucket(project, pulumi_on_path, monkeypatch):
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(deploy.DeployError, match="llm-gra11-pulumi-state needs S3 keys of ovh: set AWS_ACCESS_KEY_ID"):
        deploy.run(project, "ovh-gra11", "up", echo=lambda _: None, api=AutomationRecorder())


@pytest.fixture
def s3_server(monkeypatch):
    """moto's S3 server on 127.0.0.1: a stand-in for the provider's S3 endpoint (no cloud here)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    yield f"127.0.0.1:{port}"
    server.stop()


def test_the_state_bucket_is_created_once_versioned_and_encrypted(s3_server):
    import boto3

    backend = describe(s3_url("llm-test-pulumi-state", s3_server, "fr-par"))
    assert ensure_bucket(backend, echo=lambda _: None) is True
    assert ensure_bucket(backend, echo=lambda _: None) is False, "a rerun finds it"
    s3 = boto3.client("s3", endpoint_url=f"http://{s3_server}", region_name="fr-par")
    assert s3.get_bucket_versioning(Bucket="llm-test-pulumi-state")["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket="llm-test-pulumi-state")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_backend_command_prints_the_bucket_and_where_it_is(capsys):
    assert cli.main(["backend", "scaleway-fr-par-2-l4"]) == 0
    out = capsys.readouterr().out
    assert "backend: s3://llm-par2-serve-pulumi-state?endpoint=s3.fr-par.scw.cloud&region=fr-par&s3ForcePathStyle=true" in out
    assert "where: scaleway, fr-par, FR" in out and "secrets: passphrase" in out
