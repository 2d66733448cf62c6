"""Container image references: one parser for the stack config, job files and the policy rules.

``registry[:port]/path[:tag][@sha256:digest]``. A reference is *pinned* when it carries a digest,
or a tag that is not one of the moving ones (``MOVING_TAGS``: ``latest``, a branch, a nightly). The admission policy ``infratech-images`` (CEL) and the charts'
``values.schema.json`` (``image.repository``/``tag``/``digest``) state the same grammar in their
own languages; ``tests/policies/test_image_references.py`` keeps the three in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# the charts' values.schema.json patterns, without their anchors
REPOSITORY = r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)+"
TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
DIGEST = r"sha256:[a-f0-9]{64}"
_REFERENCE = re.compile(rf"^(?P<repository>{REPOSITORY})(:(?P<tag>{TAG}))?(@(?P<digest>{DIGEST}))?$")
# tags that name a moving target, not a release: the registry's default, branch builds, nightlies
MOVING_TAGS = ("latest", "main", "master", "nightly", "edge", "dev", "develop")
PINNED = ("a full image reference pinned by a tag or a digest (registry/path:tag or …@sha256:…), never :latest "
          "nor another moving tag (" + ", ".join(f":{t}" for t in MOVING_TAGS[1:]) + ")")


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        return self.repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def split(ref: str) -> tuple[str, str, str]:
    """``(name, tag, digest)`` of any reference, leniently: what a registry would read."""
    name, _, digest = ref.partition("@")
    head, slash, last = name.rpartition("/")
    if ":" in last:
        last, _, tag = last.partition(":")
        return head + slash + last, tag, digest
    return name, "", digest


def pin_problem(ref: str) -> Optional[str]:
    """Why ``ref`` is not pinned (``has no tag (that is :latest)``, ``uses :nightly``, a moving tag), or None."""
    _, tag, digest = split(ref)
    if digest:
        return None
    if not tag:
        return "has no tag (that is :latest)"
    return moving_tag_problem(tag)


def moving_tag_problem(tag: str) -> Optional[str]:
    """Why ``tag`` alone pins nothing (``uses :main, a moving tag``), or None (chart values give
    the tag apart from the repository)."""
    if tag.lower() in MOVING_TAGS:
        return f"uses :{tag}, a moving tag"
    return None


def parse(ref: str) -> ImageRef:
    """A full, pinned reference, or ValueError saying what is allowed."""
    m = _REFERENCE.match(ref)
    if m is None or pin_problem(ref) is not None:
        raise ValueError(f"must be {PINNED}")
    return ImageRef(repository=m["repository"], tag=m["tag"] or "", digest=m["digest"] or "")
