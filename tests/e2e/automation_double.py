"""A test double of ``pulumi.automation`` (no Pulumi CLI runs here): records each call, answers
``up`` and ``outputs`` with the outputs the stack's program gives (its offline plan's, with a
kubeconfig for the kube-apiserver double as its secret ``kubeconfig``), and fails the action named in ``fail`` as the Pulumi
CLI fails (a CommandError carrying its message)."""

from __future__ import annotations

import types


class CommandError(Exception):
    pass


class AutomationDouble:
    errors = types.SimpleNamespace(CommandError=CommandError)

    def __init__(self, outputs: dict, secret=("kubeconfig",), fail=()):
        self.calls: list[tuple] = []
        self._outputs, self._secret, self.fail = dict(outputs), set(secret), set(fail)
        self.existing: set[str] = set()
        self.config: dict[str, str] = {}  # the stack's config set through the Automation API (self-built: the kubeconfig)

    def LocalWorkspaceOptions(self, **kwargs):  # noqa: N802 - the Automation API's name
        return kwargs

    def create_or_select_stack(self, stack_name, work_dir, opts):
        self.calls.append(("create_or_select_stack", stack_name))
        self.existing.add(stack_name)
        return _Stack(self, stack_name)

    def select_stack(self, stack_name, work_dir, opts):
        self.calls.append(("select_stack", stack_name))
        if stack_name not in self.existing:
            raise CommandError(f"error: no stack named '{stack_name}' found")
        return _Stack(self, stack_name)

    def output_values(self):
        return {k: types.SimpleNamespace(value=v, secret=k in self._secret) for k, v in self._outputs.items()}


class _Stack:
    def __init__(self, api, name):
        self.api, self.name = api, name

    def _do(self, action, on_output):
        self.api.calls.append((action, self.name))
        if action in self.api.fail:
            raise CommandError(f"error: {action} failed: ovh:CloudProject/kube:Kube (gra11): 403 quota exceeded for 'kube'")
        on_output(f"{action} ({self.name}): done")

    def up(self, on_output, on_event=None):
        self._do("up", on_output)
        return types.SimpleNamespace(outputs=self.api.output_values())

    def destroy(self, on_output, on_event=None):
        self._do("destroy", on_output)

    def preview(self, on_output, on_event=None):
        self._do("preview", on_output)

    def outputs(self):
        return self.api.output_values()

    def get_config(self, key):
        return types.SimpleNamespace(value=self.api.config.get(key), secret=True)

    def set_config(self, key, value):
        self.api.calls.append(("set_config", key))
        self.api.config[key] = value.value
