"""The images a submitted job runs: exactly those `make images` built, by digest.

``make images`` writes the digest of every image it built to ``build/images/images.lock``
(infratech/images/build.py); ``infratech images push STACK`` copies them, digests unchanged, to the
stack's registry (``platform.image_registry``, published in the team's description). A submission
pins its chart to ``<registry>/<image>@<digest>`` for the job's variant: ``cuda`` when the job asks
for GPUs, else ``cpu`` (``--variant`` chooses). A stack without a registry of its own pulls from
where the project publishes (abroad), and the submission says so.

The explicit override is ``--image REF`` (or the job file's ``image:``): the job's container runs
that reference and images.lock is not read (for llm-serve, both its init step and its server,
which run the same serving code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ...images import registry
from .models import Image, JobFileError
from .values import CHART


@dataclass(frozen=True)
class Pinned:
    """The chart values that pin the job's images, and what the user should know about them."""

    values: dict[str, Any]
    notes: tuple[str, ...] = ()


def variant_of(kind: str, job) -> str:
    """``cuda`` (what GPU nodes run) when the job asks for GPUs, else ``cpu``."""
    gpus = job.gpus.per_node if kind == "train" else job.gpus.count
    return "cuda" if gpus else "cpu"


def pinned(
    kind: str,
    job,
    stack: str,
    image_registry: Optional[str],
    lock_path: Path,
    variant: Optional[str] = None,
    override: Optional[str] = None,
    source: str = "job file",
) -> Pinned:
    """The values that run ``job``'s chart on the images of ``lock_path``, or on ``override``.
    Raises :class:`registry.ImagesLockError` naming the file and the image when the lock is
    missing or lacks one, and JobFileError for an override that is not a pinned reference."""
    chart = CHART[kind]
    if override is not None:
        try:
            image = Image.parse(override)
        except ValueError as exc:
            raise JobFileError("command line", [f"--image: {override!r}: {exc}"]) from None
        notes = [f"{chart} runs {override} as given by --image; {lock_path} is not read"]
        return Pinned({"image": {"repository": image.repository, "tag": image.tag, "digest": image.digest}}, tuple(notes))
    if job.image is not None:  # the job file's own choice, already in its values
        notes = [f"{chart} runs {job.image} as the job file {source} names it; {lock_path} is not read"]
        return Pinned({}, tuple(notes))
    variant = variant or variant_of(kind, job)
    if not lock_path.is_file():
        wanted = ", ".join(f"{image}:{variant}" for image, _ in registry.CHARTS[chart])
        raise registry.ImagesLockError(
            f"{lock_path}: no such file, so no digest for {wanted}: build the images with "
            f"`{registry.make_images(variant)}`, or name an image with --image REF"
        )
    lock = registry.read_lock(lock_path)
    where = image_registry or registry.PUBLIC_REGISTRY
    values = registry.values_for(chart, lock, where, variant, lock_path)
    notes = []
    if image_registry is None:
        notes.append(
            f"stack {stack!r} has no platform.image_registry: the job pulls its images from {registry.PUBLIC_REGISTRY} "
            f"(abroad); set an in-country registry and run `infratech images push {stack}`"
        )
    return Pinned(values, tuple(notes))
