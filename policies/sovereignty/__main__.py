"""InfraTech's sovereignty and safety policy pack (Pulumi CrossGuard).

    pulumi up -s ovh-gra11 --policy-pack policies/sovereignty \
        --policy-pack-config <(.venv/bin/infratech policy-config ovh-gra11)

The rules are plain functions in ``infratech/policy/``, shared with ``infratech plan``.
``PolicyPack`` serves the pack to the Pulumi engine and never returns, so nothing else lives here.
"""

from pulumi_policy import PolicyPack

from infratech.policy.pack import policies

PolicyPack(
    name="infratech-sovereignty",
    description="Data location, allowed providers, encryption, exposure, pinning and secrets for InfraTech stacks",
    policies=policies(),
)
