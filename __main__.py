"""InfraTech Souveraine: a GPU cluster on a French provider and the GPU platform on it, described
by the stack's config.

    pulumi up -s ovh-gra11      # real deployment (Pulumi CLI, provider credentials)
    infratech plan ovh-gra11    # the same program, offline, under Pulumi's mock runtime
"""

from infratech import config
from infratech.program import outputs, platform, providers

cfg = config.load()
cluster = providers.create_cluster(cfg)
platform_ = platform.install(cfg, cluster)
outputs.export(cfg, cluster, platform_)
