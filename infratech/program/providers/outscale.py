"""3DS Outscale: VMs with flexible GPUs in a Net, made into an RKE2 cluster by the node roles,
declared with ``pulumi_outscale`` (0.0.1, bridged from outscale/terraform-provider-outscale).

Facts this follows (see docs/providers/outscale.md):
- Nodes have no public IP: they sit in a private subnet whose default route goes to a NAT service
  in the public subnet; the bastion (the one VM with a public IP) and the API load balancer are
  in the public subnet, which routes to the Internet service.
- SSH reaches the nodes only from the bastion's security group; the bastion only from
  ``outscale.admin_cidrs``. The Kubernetes API (6443) answers the allow-list through the load
  balancer and the Net inside; the RKE2 supervisor (9345), the kubelet and the CNI ports answer
  inside the Net only.
- A flexible GPU attaches to a VM whose type has the highest performance flag, few enough vCores
  and GiB, and a compatible processor generation (checked in the config). One FlexibleGpuLink per
  VM carries all its fGPUs: two links on one VM fail upstream (terraform-provider-outscale #21,
  #220), and the link stops and starts the VM for the fGPU to reach ``attached``.
- The RKE2 join token is generated once (random), kept as a secret output, never on a command line.
- No managed-Kubernetes resource is used: pulumi-outscale 0.0.1 has none.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Optional

import pulumi
import pulumi_outscale as osc
import pulumi_random as random

from ...config import Pool, StackConfig
from ...config.selfbuilt import vm_type
from ..handle import ClusterHandle
from .common import api_access, pool_handle
from .selfbuilt import RKE2_SUPERVISOR_PORT, host_name, kubeconfig_from_config, object_store_handle

PERFORMANCE = {1: "highest", 2: "high", 3: "medium"}
ROOT_GIB = {"system": 100, "training": 300, "inference": 300, "slurm": 300}
# ports open inside the Net only: (protocol, from, to, what)
INSIDE_ONLY = (
    ("tcp", 6443, 6443, "Kubernetes API"),
    ("tcp", RKE2_SUPERVISOR_PORT, RKE2_SUPERVISOR_PORT, "RKE2 supervisor (node join)"),
    ("tcp", 10250, 10250, "kubelet"),
    ("tcp", 2379, 2381, "etcd"),
    ("udp", 8472, 8472, "CNI VXLAN (canal)"),
    ("tcp", 9099, 9099, "CNI health (canal)"),
    ("tcp", 30000, 32767, "NodePort services"),
)


def oos_endpoint(region: str) -> str:
    """OUTSCALE Object Storage, S3-compatible, per region."""
    return f"https://oos.{region}.outscale.com"


def _tags(args_type, labels: dict[str, str]) -> list:
    return [args_type(key=k, value=v) for k, v in sorted(labels.items())]


class OutscaleCluster(pulumi.ComponentResource):
    """Net, bastion, NAT, security groups, RKE2 server VMs and GPU VMs with their flexible GPUs."""

    handle: ClusterHandle

    def __init__(self, name: str, cfg: StackConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("infratech:providers:OutscaleCluster", name, None, opts)
        s = cfg.outscale
        assert s is not None, "validated: provider outscale has its settings"
        self._cfg, self._name, self._subregion = cfg, name, s.subregion or f"{cfg.region}a"
        self._labels = {**cfg.labels, "infratech.io/stack": name}
        child = pulumi.ResourceOptions(parent=self)

        public_subnet, nodes_subnet = self._network(child)
        bastion_sg, api_sg, nodes_sg = self._security_groups(child)
        self.keypair = osc.Keypair(
            f"{name}-keypair", keypair_name=name,
            public_key=base64.b64encode(s.ssh_public_key.encode()).decode(), opts=child,
        )
        self.bastion = self._vm(f"{name}-bastion", s.bastion_vm_type, public_subnet, [bastion_sg], "bastion", 20, child)
        bastion_ip = osc.PublicIp(f"{name}-bastion-ip", tags=_tags(osc.PublicIpTagArgs, self._labels), opts=child)
        osc.PublicIpLink(f"{name}-bastion-ip-link", public_ip=bastion_ip.public_ip, vm_id=self.bastion.id, opts=child)

        self.token = random.RandomPassword(f"{name}-rke2-token", length=48, special=False, opts=child)
        hosts, self.vms, self.fgpu_links = [], [], []
        for pool in cfg.pools:
            for index in range(pool.desired_nodes):
                vm, link = self._node(pool, index, nodes_subnet, nodes_sg, child)
                self.vms.append(vm)
                if link is not None:
                    self.fgpu_links.append(link)
                hosts.append({
                    "name": host_name(name, pool, index),
                    "address": vm.private_ip,
                    "pool": pool.name,
                    "rke2_role": "server" if pool.role == "system" else "agent",
                    "user": s.ssh_user,
                    "jump_host": pulumi.Output.concat(s.ssh_user, "@", bastion_ip.public_ip),
                })
        servers = [vm for vm, pool in zip(self.vms, (p for p in cfg.pools for _ in range(p.desired_nodes))) if pool.role == "system"]
        self.api = osc.LoadBalancer(
            f"{name}-api",
            load_balancer_name=f"{name[:27]}-api",
            load_balancer_type="internet-facing",
            listeners=[osc.LoadBalancerListenerArgs(backend_port=6443, backend_protocol="TCP",
                                                    load_balancer_port=6443, load_balancer_protocol="TCP")],
            subnets=[public_subnet.id],
            security_groups=[api_sg.id],
            tags=_tags(osc.LoadBalancerTagArgs, self._labels),
            opts=child,
        )
        osc.LoadBalancerVms(f"{name}-api-servers", load_balancer_name=self.api.load_balancer_name,
                            backend_vm_ids=[vm.id for vm in servers], opts=child)

        first_server = servers[0].private_ip
        self.handle = ClusterHandle(
            provider="outscale",
            region=cfg.region,
            kubeconfig=kubeconfig_from_config(cfg),
            pools=tuple(pool_handle(cfg, p) for p in cfg.pools),
            object_store=object_store_handle(cfg, oos_endpoint(cfg.object_storage_region), cfg.object_storage_region),
            driver_preinstalled=True,  # the node roles install the driver and the toolkit
            toolkit_preinstalled=True,
            gpu_operator_preinstalled=False,
            distribution="rke2",
            country=cfg.region_facts.country,
            inventory={
                "server_url": pulumi.Output.concat("https://", first_server, f":{RKE2_SUPERVISOR_PORT}"),
                "api_endpoint": self.api.dns_name,
                "bastion": bastion_ip.public_ip,
                "hosts": hosts,
            },
            api_access=api_access(s.api_allowed_cidrs, s.deployer_cidrs),
            join_token=pulumi.Output.secret(self.token.result),
        )
        self.register_outputs({"api_endpoint": self.api.dns_name, "bastion": bastion_ip.public_ip})

    # -- network ----------------------------------------------------------------------------
    def _network(self, child: pulumi.ResourceOptions):
        name, cidr = self._name, ipaddress.IPv4Network(self._cfg.network.cidr)
        nodes_cidr, public_cidr = cidr.subnets(prefixlen_diff=1)
        self.net = osc.Net(f"{name}-net", ip_range=str(cidr), tags=_tags(osc.NetTagArgs, self._labels), opts=child)
        public = osc.Subnet(f"{name}-public", net_id=self.net.id, ip_range=str(public_cidr), subregion_name=self._subregion,
                            map_public_ip_on_launch=False, tags=_tags(osc.SubnetTagArgs, self._labels), opts=child)
        nodes = osc.Subnet(f"{name}-nodes", net_id=self.net.id, ip_range=str(nodes_cidr), subregion_name=self._subregion,
                           map_public_ip_on_launch=False, tags=_tags(osc.SubnetTagArgs, self._labels), opts=child)
        internet = osc.InternetService(f"{name}-internet", tags=_tags(osc.InternetServiceTagArgs, self._labels), opts=child)
        link = osc.InternetServiceLink(f"{name}-internet-link", internet_service_id=internet.id, net_id=self.net.id, opts=child)
        public_route = self._default_route("public", public, {"gateway_id": internet.id}, [link], child)
        nat_ip = osc.PublicIp(f"{name}-nat-ip", tags=_tags(osc.PublicIpTagArgs, self._labels), opts=child)
        # a NAT service needs a public subnet: one whose default route goes to the linked Internet service
        self.nat = osc.NatService(f"{name}-nat", public_ip_id=nat_ip.public_ip_id, subnet_id=public.id,
                                  tags=_tags(osc.NatServiceTagArgs, self._labels),
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=[link, public_route]))
        self._default_route("nodes", nodes, {"nat_service_id": self.nat.id}, [], child)
        return public, nodes

    def _default_route(self, kind: str, subnet, target: dict, after: list, child) -> osc.RouteTableLink:
        """A route table for ``subnet`` whose default route goes to ``target``; returns its link."""
        name = self._name
        table = osc.RouteTable(f"{name}-{kind}-routes", net_id=self.net.id,
                               tags=_tags(osc.RouteTableTagArgs, self._labels), opts=child)
        osc.Route(f"{name}-{kind}-default", route_table_id=table.id, destination_ip_range="0.0.0.0/0", **target,
                  opts=pulumi.ResourceOptions(parent=self, depends_on=after))
        return osc.RouteTableLink(f"{name}-{kind}-routes-link", route_table_id=table.id, subnet_id=subnet.id, opts=child)

    def _security_groups(self, child: pulumi.ResourceOptions):
        name, s, inside = self._name, self._cfg.outscale, self._cfg.network.cidr

        def group(kind: str, what: str) -> osc.SecurityGroup:
            return osc.SecurityGroup(f"{name}-{kind}", security_group_name=f"{name}-{kind}", description=what,
                                     net_id=self.net.id, tags=_tags(osc.SecurityGroupTagArgs, self._labels), opts=child)

        def allow(kind: str, sg: osc.SecurityGroup, rules: list) -> None:
            if rules:
                osc.SecurityGroupRule(f"{name}-{kind}", flow="Inbound", security_group_id=sg.id, rules=rules, opts=child)

        bastion = group("bastion", "SSH bastion: SSH from the admin networks only")
        api = group("api", "Kubernetes API load balancer: 6443 from the allow-list")
        nodes = group("nodes", "RKE2 nodes: SSH from the bastion, cluster ports inside the Net")
        allow("bastion-ssh", bastion, [osc.SecurityGroupRuleRuleArgs(ip_protocol="tcp", from_port_range=22, to_port_range=22,
                                                                      ip_ranges=list(s.admin_cidrs))] if s.admin_cidrs else [])
        allowed = list(dict.fromkeys([*s.api_allowed_cidrs, *s.deployer_cidrs]))
        allow("api-6443", api, [osc.SecurityGroupRuleRuleArgs(ip_protocol="tcp", from_port_range=6443, to_port_range=6443,
                                                               ip_ranges=allowed)] if allowed else [])
        allow("nodes-ssh", nodes, [osc.SecurityGroupRuleRuleArgs(
            ip_protocol="tcp", from_port_range=22, to_port_range=22,
            security_groups_members=[osc.SecurityGroupRuleRuleSecurityGroupsMemberArgs(security_group_id=bastion.id)])])
        allow("nodes-inside", nodes, [
            osc.SecurityGroupRuleRuleArgs(ip_protocol=proto, from_port_range=low, to_port_range=high, ip_ranges=[inside])
            for proto, low, high, _ in INSIDE_ONLY
        ])
        return bastion, api, nodes

    # -- machines ---------------------------------------------------------------------------
    def _vm(self, name: str, type_: str, subnet, groups: list, role: str, root_gib: int, opts, performance: Optional[str] = None):
        return osc.Vm(
            name,
            image_id=self._cfg.outscale.image_id,
            vm_type=type_,
            performance=performance or PERFORMANCE[vm_type(type_)["performance"]],
            keypair_name=self.keypair.keypair_name,
            subnet_id=subnet.id,
            security_group_ids=[g.id for g in groups],
            placement_subregion_name=self._subregion,
            block_device_mappings=[osc.VmBlockDeviceMappingArgs(
                device_name="/dev/sda1",
                bsu=osc.VmBlockDeviceMappingBsuArgs(volume_size=root_gib, volume_type="gp2", delete_on_vm_deletion=True),
            )],
            tags=_tags(osc.VmTagArgs, {**self._labels, "Name": name, "infratech.io/role": role}),
            opts=opts,
        )

    def _node(self, pool: Pool, index: int, subnet, sg, child):
        """One VM of a pool, and for GPU pools its fGPUs attached by one link."""
        name = host_name(self._name, pool, index)
        gpus = pool.gpus_per_node or 0 if pool.gpu_model else 0
        vm = self._vm(name, pool.flavor, subnet, [sg], pool.role, ROOT_GIB[pool.role], child,
                      performance="highest" if gpus else None)
        if not gpus:
            return vm, None
        fgpus = [
            osc.FlexibleGpu(f"{name}-fgpu-{j}", model_name=pool.gpu_model, subregion_name=self._subregion,
                            generation=vm_type(pool.flavor)["generation"],
                            delete_on_vm_deletion=self._cfg.outscale.fgpu_delete_on_vm_deletion, opts=child)
            for j in range(gpus)
        ]
        link = osc.FlexibleGpuLink(f"{name}-fgpu-link", flexible_gpu_ids=[g.id for g in fgpus], vm_id=vm.id, opts=child)
        return vm, link
