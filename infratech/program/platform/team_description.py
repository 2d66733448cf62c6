"""The cluster describes itself to each team: what a job needs, published in the team's namespace.

``describe`` is the one implementation of a team's description. The stack exports it (output
``team_descriptions``, read by ``infratech submit --stack``) and :class:`TeamDescriptions`
publishes the very same document as the ConfigMap ``infratech-team`` (key ``team.yaml``) in the
team's namespace, readable by the team's groups (Role and RoleBinding ``infratech-team-reader``),
where ``infratech submit`` and ``infratech jobs`` read it with the researcher's own kubeconfig. The
two cannot drift: they are one value.

The description holds names, labels, counts and the object store's endpoint and bucket names, and
never a key or a token: the object store's keys stay in the Secret ``object-store`` that jobs mount.
Its ``schema`` says which shape it has, so a CLI newer than the platform can say so.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import yaml

from ...config import StackConfig, Team
from ...team_description import CONFIGMAP, DATA_KEY, READER, SCHEMA
from ..handle import ClusterHandle
from .base import Namespace, child_opts, meta
from .kueue import PRIORITY_CLASSES, flavor_spec, kueue_pools
from .tenancy import OBJECT_STORE_SECRET, team_groups



def describe(
    cfg: StackConfig,
    cluster: ClusterHandle,
    team: Team,
    *,
    queues: dict[str, dict[str, str]],
    priority_classes: tuple[str, ...],
    training_runtime: Optional[str],
    serving_namespace: Optional[str],
) -> dict[str, Any]:
    """What a job of ``team`` needs: its namespace and LocalQueue, the training runtime, the GPU
    pools and flavours (node labels, tolerations, GPUs per node), the priority classes, where
    serving runs, and the object store's endpoint and buckets. The buckets may be Outputs."""
    queue = queues.get(team.name) or {}
    store = cluster.object_store
    models = sorted({p.gpu_model for p in kueue_pools(cluster) if p.gpu_model})
    return {
        "schema": SCHEMA,
        "stack": pulumi.get_stack(),
        "team": team.name,
        "namespace": team.namespace,
        "groups": team_groups(team),
        "local_queue": queue.get("local_queue"),
        "cluster_queue": queue.get("cluster_queue"),
        "training_runtime": training_runtime,
        "serving_namespace": serving_namespace,
        # where the cluster pulls the workload images (`infratech images push`); None: abroad
        "image_registry": cfg.platform.image_registry,
        # in the stack's pool order: a job naming no model takes the first pool of its role
        "gpu_pools": [
            {"pool": p.name, "role": p.role, "flavour": p.gpu_model, "gpus_per_node": p.gpus_per_node, "max_nodes": p.max_nodes}
            for p in kueue_pools(cluster)
            if p.gpu_model
        ],
        "gpu_flavours": {
            m: {"node_labels": flavor_spec(m)["nodeLabels"], "tolerations": flavor_spec(m)["tolerations"]} for m in models
        },
        "priority_classes": [
            {"name": name, "value": value, "description": text} for name, value, text in PRIORITY_CLASSES if name in priority_classes
        ],
        "object_store": None
        if store is None
        else {
            "endpoint": store.endpoint,
            "region": store.region,
            "buckets": dict(sorted(store.buckets.items())),
            "credentials_from": OBJECT_STORE_SECRET,  # the name of the Secret jobs load the keys from, never a key
        },
    }


def document(description: dict[str, Any]) -> pulumi.Output[str]:
    """The description as the ConfigMap's YAML (keys sorted, so the same description is the same text)."""
    return pulumi.Output.from_input(description).apply(lambda d: yaml.safe_dump(d, sort_keys=True))


class TeamDescriptions(pulumi.ComponentResource):
    """The ConfigMap ``infratech-team`` in each team's namespace, and, with ``platform.tenancy``
    (the switch of all our RBAC), the Role and RoleBinding that let the team's groups read it
    (``get`` of that one ConfigMap)."""

    def __init__(
        self,
        name: str,
        descriptions: dict[str, dict[str, Any]],
        cfg: StackConfig,
        provider,
        team_namespaces: dict[str, Namespace],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("infratech:platform:TeamDescriptions", name, None, opts)
        for team in cfg.teams:
            ns = team_namespaces[team.name]
            after_ns = child_opts(self, provider, depends_on=[ns.resource])
            k8s.core.v1.ConfigMap(
                f"{team.name}-description",
                metadata=meta(CONFIGMAP, ns.name),
                data={DATA_KEY: document(descriptions[team.name])},
                immutable=True,  # nobody edits it in place; a new platform replaces it
                opts=pulumi.ResourceOptions.merge(after_ns, pulumi.ResourceOptions(delete_before_replace=True)),
            )
            if not cfg.platform.tenancy:  # no RBAC of ours at all: the cluster's owner grants access
                continue
            role = k8s.rbac.v1.Role(
                f"{team.name}-description-reader",
                metadata=meta(READER, ns.name),
                rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["configmaps"], resource_names=[CONFIGMAP], verbs=["get"])],
                opts=after_ns,
            )
            k8s.rbac.v1.RoleBinding(
                f"{team.name}-description-reader",
                metadata=meta(READER, ns.name),
                role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=READER),
                subjects=[k8s.rbac.v1.SubjectArgs(kind="Group", name=g, api_group="rbac.authorization.k8s.io") for g in team_groups(team)],
                opts=child_opts(self, provider, depends_on=[ns.resource, role]),
            )
        self.register_outputs({"teams": sorted(descriptions)})
