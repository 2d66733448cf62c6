"""Slurm on the cluster: ``platform.slurm`` (partitions, the login node, accounting), docs/slurm.md.

The pools Slurm runs on are the stack's pools with ``role: slurm``; what ties the two together (a
partition names pools that exist, a GPU partition has GPUs, the login node sits behind the stack's
allow-list) is checked on the whole stack by :func:`slurm_problems`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Optional

from pydantic import Field, field_validator, model_validator

from .common import PROVIDER_TITLES, _Model, _repeated

SLURM_ROLE = "slurm"
# Slurm partition names: kept to what a shell and a Helm map key take without quoting
_PARTITION = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# OpenSSH public key types sshd accepts in authorized_keys (sshd(8) AUTHORIZED_KEYS FILE FORMAT)
SSH_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
HOURS_PER_YEAR = 8760


class Partition(_Model):
    """A Slurm partition over one or more Slurm pools (one NodeSet each)."""

    name: str
    pools: tuple[str, ...] = Field(min_length=1)
    # a GPU partition (the default) holds only pools whose nodes have GPUs
    gpus: bool = True
    # the partition jobs go to when they name none; the first partition when none says so
    default: bool = False
    # a job that gives no --time gets default_time_hours; none may ask for more than max_time_hours
    default_time_hours: int = Field(default=1, ge=1, le=HOURS_PER_YEAR, strict=True)
    max_time_hours: int = Field(default=24, ge=1, le=HOURS_PER_YEAR, strict=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _PARTITION.match(v):
            raise ValueError("partition name must be lowercase letters, digits and '-', start with a letter, at most 31 characters")
        return v

    @model_validator(mode="after")
    def _times(self) -> "Partition":
        if self.default_time_hours > self.max_time_hours:
            raise ValueError(f"default_time_hours ({self.default_time_hours}) must not exceed max_time_hours ({self.max_time_hours})")
        return self


def _ssh_key(line: str) -> str:
    parts = line.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValueError(f"must be an OpenSSH public key line '<type> <base64> [comment]', type one of {', '.join(SSH_KEY_TYPES)}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key's second field is not base64: copy the whole line of the .pub file") from None
    # the blob starts with the key type again, as a length-prefixed string (RFC 4253 section 6.6)
    if blob[4:4 + len(parts[0])] != parts[0].encode():
        raise ValueError(f"the key data does not hold a {parts[0]} key: copy the whole line of the .pub file")
    return line


class Login(_Model):
    """The login node (a Slinky LoginSet): SSH with these keys, from the stack's allow-list only."""

    # the team's OpenSSH public keys, one line each (the .pub file's content)
    ssh_public_keys: tuple[str, ...]
    replicas: int = Field(default=1, ge=1, le=10, strict=True)

    @field_validator("ssh_public_keys")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("needs at least one OpenSSH public key: the login node takes SSH logins with these keys only")
        for i, line in enumerate(v):
            try:
                _ssh_key(line)
            except ValueError as exc:
                raise ValueError(f"key {i + 1}: {exc}") from None
        if _repeated(v):
            raise ValueError("a key is listed twice")
        return v


class Accounting(_Model):
    """slurmdbd, writing to a MariaDB or MySQL database that the cluster's operator provides."""

    host: str
    port: int = Field(default=3306, ge=1, le=65535, strict=True)
    database: str = "slurm_acct_db"
    username: str = "slurm"
    # a Secret in the slurm namespace holding the database password under the key ``password``
    password_secret: str

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?", v):
            raise ValueError("must be a host name or an IP address, without scheme or port")
        return v

    @field_validator("password_secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", v) or len(v) > 253:
            raise ValueError("must be the name of a Kubernetes Secret (lowercase letters, digits, '-', '.')")
        return v


class Slurm(_Model):
    """Slurm (SchedMD's Slinky) on the pools whose role is ``slurm``; absent: no Slurm."""

    partitions: tuple[Partition, ...] = Field(min_length=1)
    login: Optional[Login] = None
    accounting: Optional[Accounting] = None

    @field_validator("partitions")
    @classmethod
    def _partitions(cls, v: tuple[Partition, ...]) -> tuple[Partition, ...]:
        problems = []
        dupes = _repeated(p.name for p in v)
        if dupes:
            problems.append(f"partition names must be unique; repeated: {', '.join(dupes)}")
        defaults = [p.name for p in v if p.default]
        if len(defaults) > 1:
            problems.append(f"only one partition may be the default; default: true on {', '.join(defaults)}")
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @property
    def default_partition(self) -> str:
        return next((p.name for p in self.partitions if p.default), self.partitions[0].name)


def slurm_problems(slurm: Optional[Slurm], provider: Optional[str], pools: tuple, gpus: dict[str, int],
                   allow_list: tuple[str, ...]) -> list[str]:
    """What is wrong between ``platform.slurm`` and the rest of the stack: ``pools`` as validated,
    ``gpus`` pool name -> GPUs per node, ``allow_list`` the networks that may reach the cluster."""
    slurm_pools = [p.name for p in pools if p.role == SLURM_ROLE]
    if slurm is None:
        if slurm_pools:
            return [f"pool(s) {', '.join(slurm_pools)} have role slurm but platform.slurm is not set: "
                    "their nodes would take no work; add platform.slurm with a partition, or give them another role"]
        return []
    problems = []
    if provider == "existing":
        problems.append(f"slurm needs pools the stack taints for Slurm alone, and {PROVIDER_TITLES['existing']}'s nodes are "
                        "labelled and tainted by whoever runs it; use a provider whose pools the stack creates "
                        "(ovh, scaleway, outscale, baremetal)")
    if not slurm_pools:
        problems.append("slurm needs at least one pool with role slurm: Slurm gets nodes of its own, which Kueue never uses")
    for i, part in enumerate(slurm.partitions):
        for name in part.pools:
            if name not in slurm_pools:
                problems.append(f"slurm.partitions[{i}].pools: {name!r} is not a pool with role slurm; "
                                f"allowed: {', '.join(slurm_pools) or 'none (no pool has role slurm)'}")
            elif part.gpus and not gpus.get(name):
                problems.append(f"slurm.partitions[{i}] ({part.name}) is a GPU partition but pool {name!r} has no GPUs; "
                                "name a GPU pool, or set gpus: false for a CPU partition")
    if slurm.login is not None and not allow_list:
        problems.append("slurm.login needs the stack's allow-list (api_allowed_cidrs of the provider's settings): "
                        "the login node's SSH port is opened to those networks only")
    return problems
