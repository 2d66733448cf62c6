"""Stack outputs: what platform engineers, operators and the CLI read after a deployment."""

from __future__ import annotations

from typing import Optional

import pulumi

from .. import costs
from ..config import StackConfig
from .access import access
from .handle import ClusterHandle
from .platform import PlatformHandle


def export(cfg: StackConfig, cluster: ClusterHandle, platform: Optional[PlatformHandle] = None) -> None:
    pulumi.export("provider", cluster.provider)
    pulumi.export("region", cluster.region)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export(
        "pools",
        [
            {
                "name": p.name,
                "role": p.role,
                "flavor": p.flavor,
                "gpu_model": p.gpu_model,
                "gpus_per_node": p.gpus_per_node,
                "nodes": {"min": p.min_nodes, "desired": p.desired_nodes, "max": p.max_nodes},
                "labels": p.labels,
                "taints": list(p.taints),
            }
            for p in cluster.pools
        ],
    )
    store = cluster.object_store
    if store is not None:
        pulumi.export(
            "object_store",
            {
                "endpoint": store.endpoint,
                "region": store.region,
                "buckets": store.buckets,
                "access_key_id": store.access_key_id,
                "secret_access_key": store.secret_access_key,
                # the evaluation gate's identity, the only one that writes promotions: for the
                # platform's own pipeline, never for a team namespace (docs/platform.md)
                **(
                    {"promoter": {"access_key_id": store.promoter.access_key_id, "secret_access_key": store.promoter.secret_access_key}}
                    if store.promoter is not None
                    else {}
                ),
            },
        )
    pulumi.export("teams", [t.name for t in cfg.teams])
    # where the cluster pulls the workload images (None: the stack has no registry of its own)
    pulumi.export("image_registry", cfg.platform.image_registry)
    if platform is not None:
        # what `infratech submit` resolves: a team's namespace and queue, the runtime, the classes
        pulumi.export("queues", platform.queues)
        pulumi.export("storage_classes", list(platform.storage_classes))
        pulumi.export("serving_namespace", platform.serving_namespace)
        pulumi.export("training_runtime", platform.training_runtime)
        pulumi.export("priority_classes", list(platform.priority_classes))
        pulumi.export("charts", platform.charts)
        # each team's description, the document its namespace's ConfigMap infratech-team holds
        pulumi.export("team_descriptions", platform.team_descriptions)
    pulumi.export("kube_context", cluster.kube_context)
    # the API's endpoint and CA, the OIDC issuer and the teams' groups: `infratech kubeconfig`
    pulumi.export("access", access(cfg, cluster))
    # where this stack's state and secrets live (infratech backend; the state-in-region rule)
    pulumi.export("state", cfg.state_backend().to_dict())
    if cluster.api_access is not None:
        pulumi.export("api_access", cluster.api_access)
    pulumi.export("country", cluster.country)
    # what the platform layer must not install twice
    pulumi.export(
        "preinstalled",
        {
            "driver": cluster.driver_preinstalled,
            "toolkit": cluster.toolkit_preinstalled,
            "gpu_operator": cluster.gpu_operator_preinstalled,
            "distribution": cluster.distribution,
        },
    )
    pulumi.export("driver_preinstalled", cluster.driver_preinstalled)
    pulumi.export("inventory", cluster.inventory)
    if cluster.join_token is not None:
        pulumi.export("join_token", cluster.join_token)  # a secret: read by the bootstrap phase only
    stack_costs = costs.stack_costs(cfg)
    pulumi.export("costs", stack_costs.to_dict())
    if stack_costs.budget.warning:  # exceeded but not enforced, or not checkable fully
        pulumi.log.warn(f"budget: {stack_costs.budget.warning}")
