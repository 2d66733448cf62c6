"""Run the Pulumi program in-process under the SDK's own mock runtime and record what it declares.

This is how the offline plan stays honest: it never describes a stack a second time, it runs
``__main__.py`` exactly as ``pulumi preview`` would, with the engine replaced by a monitor that
records every resource registration (type, name, parent, provider, inputs, dependencies).
Values that only exist after creation are unknown in a preview and are recorded as ``(computed)``;
secret values are recorded as ``[secret]`` and never written anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import runpy
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from ...offline import set_offline
from ...policy.model import COMPUTED, SECRET  # one definition of the markers, for the plan and the rules
from ..stacks import Project, read_stack_config


_LOCK = threading.Lock()  # the Pulumi runtime is process-global: one plan at a time
@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: Optional[str]
    custom: bool
    provider: Optional[str]
    dependencies: list[str]
    inputs: dict[str, Any]
    secret_outputs: list[str]
    protect: bool
    ignore_changes: list[str] = field(default_factory=list)  # inputs the engine leaves alone after creation
    replace_on_changes: list[str] = field(default_factory=list)  # inputs whose change replaces the resource
    custom_timeouts: dict[str, str] = field(default_factory=dict)  # create/update/delete waits, where set
    children: list["Resource"] = field(default_factory=list, repr=False)

    @property
    def package(self) -> str:
        return self.type.split(":", 1)[0]


@dataclass
class Recording:
    project: str
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]

    def by_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.by_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {len(found)}"
        return found[0]


def _normalize(value: Any) -> Any:
    """Turn the wire form of a property (protobuf JSON) into plain data with markers."""
    if isinstance(value, str):
        return COMPUTED if value == rpc.UNKNOWN else value
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET
        if sig == rpc._special_resource_sig:
            return {"$ref": value.get("urn")}
        if sig == rpc._special_output_value_sig:
            if value.get("secret"):
                return SECRET
            return _normalize(value["value"]) if "value" in value else COMPUTED
        return {k: _normalize(v) for k, v in sorted(value.items())}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Struct carries every number as a double
    return value


class _PlanMocks(mocks.Mocks):
    """Provider behaviour in a preview: outputs echo the inputs, everything else is unknown."""

    def new_resource(self, args: mocks.MockResourceArgs):
        return None, dict(args.inputs)

    def call(self, args: mocks.MockCallArgs):
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, behaviour: Optional[mocks.Mocks] = None):
        super().__init__(behaviour or _PlanMocks())
        self.recorded: list[Resource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            self.recorded.append(
                Resource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    custom=bool(request.custom),
                    provider=request.provider or None,
                    dependencies=sorted(set(request.dependencies)),
                    inputs=_normalize(inputs),
                    secret_outputs=sorted(set(request.additionalSecretOutputs)),
                    protect=bool(request.protect),
                    ignore_changes=list(request.ignoreChanges),
                    replace_on_changes=list(request.replaceOnChanges),
                    custom_timeouts={k: v for k, v in (("create", request.customTimeouts.create),
                                                       ("update", request.customTimeouts.update),
                                                       ("delete", request.customTimeouts.delete)) if v},
                )
            )
        return response


async def _resolve(value: Any) -> Any:
    """Resolve an exported value leaf by leaf, so one unknown leaf does not hide its siblings."""
    if isinstance(value, pulumi.Output):
        if await value.is_secret():
            return SECRET
        if not await value.is_known():
            return COMPUTED
        return await _resolve(await value.future())
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v) for v in value]
    if asyncio.isfuture(value) or asyncio.iscoroutine(value):
        return await _resolve(await value)
    return value


@contextlib.contextmanager
def _registration_without_engine_metadata():
    """What only the engine reads, skipped while recording; the program's code is untouched.

    - Source positions: the SDK walks the Python stack and turns every frame's file name into a
      URI for each resource it registers (``pulumi.runtime.resource._get_stack_trace``, pulumi
      3.272), for the engine's diagnostics. The plan records none of it, and it was about a fifth
      of a large plan's time.
    - The garbage collector: a plan allocates a few futures per output property of every resource
      and frees none until the end, so the collector's scans of ever more live objects cost
      more the larger the stack (more than a third of the CPU time of a 1,000-VM plan). The
      objects that exist before the plan are frozen out of the scans, young collections made
      rarer, and both undone afterwards. ``benchmarks/plan_scaling.py --vms`` measures it.
    """
    saved_trace = sdk_resource._get_stack_trace
    thresholds = gc.get_threshold()
    sdk_resource._get_stack_trace = source_pb2.StackTrace  # an empty trace: no frames, no position
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = saved_trace
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def record(project: Project, stack: str, behaviour: Optional[mocks.Mocks] = None,
           secret_overrides: Optional[dict[str, str]] = None) -> Recording:
    """Run ``project``'s program for ``stack`` under mocks and return what it declared.

    ``behaviour``: what the providers answer; by default a preview's (outputs echo the inputs,
    ids unknown). Tests pass stand-ins that answer with ids and outputs, to follow values the
    program derives from them. Raises whatever the program raises (``StackConfigError`` for a
    bad stack file). ``secret_overrides``: secret config values laid over the stack file's (the
    platform phase of a self-built stack is planned with a stand-in kubeconfig, as after bootstrap).
    """
    config, secret_keys = read_stack_config(project, stack)
    if secret_overrides:
        config = {**config, **secret_overrides}
        secret_keys = sorted(set(secret_keys) | set(secret_overrides))
    with _LOCK:
        settings.ROOT.set(None)
        monitor = _RecordingMonitor(behaviour)
        mocks.set_mocks(monitor.mocks, project=project.name, stack=stack, preview=True, monitor=monitor)
        pulumi.runtime.set_all_config(config, secret_keys)
        exported: dict[str, Any] = {}

        def program():
            runpy.run_path(str(project.main), run_name="__main__")
            root = settings.get_root_resource()
            exported.update(_sync_await(_resolve(dict(root.outputs))))

        set_offline(True)
        try:
            with _registration_without_engine_metadata():
                _sync_await(run_pulumi_func(program))
        finally:
            set_offline(False)
            pulumi.runtime.set_all_config({}, [])
            settings.ROOT.set(None)

    by_urn = {r.urn: r for r in monitor.recorded}
    for res in monitor.recorded:
        if res.parent in by_urn:
            by_urn[res.parent].children.append(res)
    return Recording(project=project.name, stack=stack, resources=monitor.recorded, outputs=exported)
