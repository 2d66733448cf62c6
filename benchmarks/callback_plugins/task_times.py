"""Wall time of every task (and handler) of a play, summed over hosts, written as JSON.

Used by benchmarks/roles_converge.py to say where a converge spends its time. Enabled with
ANSIBLE_CALLBACKS_ENABLED=task_times and ANSIBLE_CALLBACK_PLUGINS=<this directory>; the file is
named by INFRATECH_TASK_TIMES. Timing is from the task's start to its last host's result, the wall
time a linear play waits on it.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: wall time per task, as JSON
description: Writes the wall time of each task and handler to the file named by INFRATECH_TASK_TIMES.
requirements: []
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._current: tuple[str, float] | None = None
        self._times: dict[str, float] = {}
        self._order: list[str] = []

    def _start(self, task):
        self._stop()
        name = f"{task._role.get_name()} : {task.get_name()}" if task._role else task.get_name()
        self._current = (name, time.monotonic())

    def _stop(self):
        if self._current is None:
            return
        name, start = self._current
        if name not in self._times:
            self._order.append(name)
            self._times[name] = 0.0
        self._times[name] += time.monotonic() - start
        self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_playbook_on_stats(self, stats):
        self._stop()
        path = os.environ.get("INFRATECH_TASK_TIMES")
        if path:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump([{"task": n, "seconds": round(self._times[n], 3)} for n in self._order], fh, indent=1)
