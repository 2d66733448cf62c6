"""Sovereignty and safety rules as code, shared by the offline plan and the Pulumi policy pack.

``RULES`` (rules.py) are plain functions over plain data (model.py); ``evaluate`` runs them on a
stack. ``policies/sovereignty`` wraps the same functions as a CrossGuard policy pack.
"""

from .evaluate import blocking, evaluate, resources_from_recording, to_json, to_markdown, to_text
from .model import LEVELS, Resource, Rule, Settings, Stack, Verdict
from .rules import BY_ID, RULES

__all__ = [
    "BY_ID", "LEVELS", "RULES", "Resource", "Rule", "Settings", "Stack", "Verdict",
    "blocking", "evaluate", "resources_from_recording", "to_json", "to_markdown", "to_text",
]
