"""Self-built clusters: ``outscale:`` (VMs with flexible GPUs) and ``baremetal:`` (servers you own
or rent), both made into an RKE2 cluster by the node roles.

The stack's one ``system`` pool is the RKE2 servers (control plane and cluster services); the
GPU pools are the agents. RKE2 servers run etcd: one server, or three for a quorum that survives
the loss of one; two would stop the cluster when either fails (etcd needs a majority), so 2 is refused.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional

from pydantic import Field, field_validator

from .. import catalog as _catalog
from .common import _Model, _api_cidrs, _country_code, _dns_label
from .providers import ExistingObjectStore

# tinavW.cXrYpZ: processor generation W, X vCores, Y GiB of memory, performance Z (1 highest)
_VM_TYPE = re.compile(r"^tinav(?P<gen>\d+)\.c(?P<vcores>\d+)r(?P<ram>\d+)p(?P<perf>[123])$")
_OMI = re.compile(r"^ami-[0-9a-f]{8}$")
_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( \S.*)?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SERVER_COUNTS = (1, 3)


def server_count_problem(n: int) -> Optional[str]:
    if n in SERVER_COUNTS:
        return None
    return (f"the system pool is the RKE2 servers: 1 or 3 nodes (etcd needs a majority: with 2, "
            f"the cluster stops when either fails); given {n}")


def vm_type(v: str) -> dict[str, Any]:
    """The parts of an Outscale VM type name; ValueError naming the form when it is not one."""
    m = _VM_TYPE.match(v)
    if not m:
        raise ValueError(f"{v!r} is not an Outscale VM type: write tinavW.cXrYpZ (generation W, X vCores, "
                         "Y GiB, performance Z from 1 highest to 3), e.g. tinav6.c32r128p1")
    return {"generation": f"v{m['gen']}", "vcores": int(m["vcores"]), "ram_gib": int(m["ram"]), "performance": int(m["perf"])}


def fgpu_problems(flavor: str, model: str, count: int, region: Optional[str]) -> dict[str, str]:
    """What keeps ``count`` fGPUs of ``model`` from attaching to a VM of type ``flavor`` in
    ``region``: {field: message}. Facts from the catalog's ``fgpu`` section (About Flexible GPUs)."""
    cat = _catalog.load()
    offer = cat.offer("outscale", model)
    if region is not None and cat.region("outscale", region) is None:
        region = None  # an unknown region is reported on its own
    # an fGPU model counts as sold in a region only where a source names that region
    sold = [o.flavor for o in cat.offers("outscale") if o.is_gpu and region and region in (o.regions or ())]
    if offer is None or not offer.is_gpu:
        allowed = f"allowed in {region}: {', '.join(sold)}" if region else "see `infratech catalog`"
        return {"gpu_model": f"{model!r} is not an Outscale flexible GPU model; {allowed}"}
    if region is not None and region not in (offer.regions or ()):
        where = ", ".join(offer.regions or ()) or "no region our sources name"
        return {"gpu_model": f"{model} is sold in {where}, not in {region}; allowed there: {', '.join(sold)}"}
    problems = {}
    if count > cat.fgpu_per_vm:
        problems["gpus_per_node"] = (f"{count} fGPUs on one VM: an Outscale VM takes at most {cat.fgpu_per_vm} "
                                     f"fGPUs of one model ({flavor}); add VMs instead")
    try:
        vm = vm_type(flavor)
    except ValueError:
        return problems  # reported on flavor
    host = cat.fgpu_host(model)
    limits = []
    if vm["performance"] != 1:
        limits.append(f"performance p{vm['performance']}, but an fGPU needs the highest (p1)")
    if host is not None:
        if vm["vcores"] > host.max_vcores:
            limits.append(f"{vm['vcores']} vCores, more than the {host.max_vcores} {model} allows")
        if vm["ram_gib"] > host.max_ram_gib:
            limits.append(f"{vm['ram_gib']} GiB, more than the {host.max_ram_gib:g} GiB {model} allows")
        if vm["generation"] not in host.generations:
            limits.append(f"processor generation {vm['generation']}; {model} needs {' or '.join(host.generations)}")
    if limits:
        problems["flavor"] = f"VM type {flavor} cannot take {model}: " + "; ".join(limits)
    return problems


class OutscaleSettings(_Model):
    """A Net with a bastion, RKE2 server VMs and GPU VMs with flexible GPUs (docs/providers/outscale.md)."""

    image_id: str = Field(description="the OMI of every VM (Ubuntu or Debian the node roles support), ami-xxxxxxxx")
    ssh_public_key: str = Field(description="OpenSSH public key of the operators (the keypair of every VM)")
    subregion: Optional[str] = Field(default=None, description="subregion of every VM and fGPU; <region>a when unset")
    bastion_vm_type: str = "tinav6.c1r2p3"
    ssh_user: str = "outscale"
    admin_cidrs: tuple[str, ...] = Field(default=(), description="networks that may SSH to the bastion")
    api_allowed_cidrs: tuple[str, ...] = ()
    deployer_cidrs: tuple[str, ...] = Field(
        default=(), description="where `pulumi up` runs from (its egress address): added to the API allow-list"
    )
    fgpu_delete_on_vm_deletion: bool = True

    @field_validator("image_id")
    @classmethod
    def _omi(cls, v: str) -> str:
        if not _OMI.match(v):
            raise ValueError("must be an Outscale machine image id: ami- and 8 hexadecimal digits")
        return v

    @field_validator("ssh_public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _SSH_KEY.match(v):
            raise ValueError("must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp*), never a private key")
        return v

    @field_validator("bastion_vm_type")
    @classmethod
    def _vm_type(cls, v: str) -> str:
        vm_type(v)
        return v

    @field_validator("ssh_user")
    @classmethod
    def _user(cls, v: str) -> str:
        return _dns_label(v, "ssh_user", 32)

    @field_validator("admin_cidrs", "api_allowed_cidrs", "deployer_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _api_cidrs(v)


class Host(_Model):
    """A server you own or rent: how Ansible reaches it."""

    address: str = Field(description="IP address or DNS name the node roles connect to")
    name: Optional[str] = Field(default=None, description="the node's name; derived from the pool when unset")
    jump_host: Optional[str] = Field(default=None, description="user@host of an SSH bastion in front of it")

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            if not _HOSTNAME.match(v):
                raise ValueError(f"{v!r} is neither an IP address nor a DNS name") from None
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _dns_label(v, "host name", 63)

    @field_validator("jump_host")
    @classmethod
    def _jump(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"([a-z_][a-z0-9_-]*@)?[A-Za-z0-9.:-]+", v):
            raise ValueError("must be [user@]host of an SSH jump host")
        return v


class BaremetalSettings(_Model):
    """Servers you own or rent: nothing is created, the node roles make them a cluster."""

    country: str = Field(default="FR", description="ISO 3166 country where the servers run, for residency checks")
    ssh_user: str = "root"
    api_endpoint: Optional[str] = Field(default=None, description="DNS name or address clients use for the API; the first server when unset")
    object_store: Optional[ExistingObjectStore] = None

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        return _country_code(v)
