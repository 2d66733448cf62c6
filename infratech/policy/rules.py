"""The sovereignty and safety rules, as plain functions over plain data.

The offline plan (``infratech plan``), the Pulumi policy pack (``policies/sovereignty``) and the
tests call these same functions. Each rule has an id, what it protects, where the requirement
comes from, how to fix a violation and a default enforcement level a stack can change.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Optional

from .. import catalog as _catalog
from .. import imageref
from ..mirror import table as mirror_table
from ..mirror.refs import image_refs
from ..state import ABROAD_SECRETS, SECRETS_PROVIDERS
from .model import COMPUTED, Resource, Rule, Settings, Stack, walk
from .network import api_restricted, deployer_reaches_api, no_open_admin_ingress
from .secrets import secret_outputs, secrets_as_secrets
from .storage import bucket_not_public
from .tenancy import team_guardrails

EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
# the Pulumi packages of the cloud providers this project provisions on; anything else is foreign
PACKAGE_PROVIDER = {"ovh": "ovh", "scaleway": "scaleway", "outscale": "outscale"}
NEUTRAL_PACKAGES = {"kubernetes", "random", "time", "pulumi"}  # create nothing at a provider
GPU_TAINT = "nvidia.com/gpu"
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


# -- helpers ---------------------------------------------------------------------------------------
def _known(value: Any) -> bool:
    return value is not None and value != COMPUTED


def _location_countries(provider: str) -> dict[str, str]:
    """Region, zone and object-storage region names of a provider (lower case) -> country."""
    out: dict[str, str] = {}
    for region in _catalog.load().regions(provider).values():
        for name in (*region.locations, region.object_storage_region):
            out[name.lower()] = region.country
    return out


def _allowed_countries(settings: Settings) -> frozenset[str]:
    return frozenset({"FR"}) if settings.area == "france" else EU_COUNTRIES


def _area_name(settings: Settings) -> str:
    return "France" if settings.area == "france" else "the European Union"


def _locations(res: Resource) -> Iterator[str]:
    for key in ("region", "zone"):
        value = res.props.get(key)
        if isinstance(value, str) and _known(value):
            yield value
    for key in ("regions", "availabilityZones"):
        for value in res.props.get(key) or ():
            if isinstance(value, str) and _known(value):
                yield value


def _gpu_offer(provider: str, flavor: Any) -> bool:
    offer = _catalog.load().offer(provider, flavor) if isinstance(flavor, str) else None
    return offer is not None and offer.is_gpu


def _pool_labels_taints(res: Resource) -> Optional[tuple[str, Any, dict, list]]:
    """(provider, flavor, labels, taints) of a node-pool resource, else None."""
    if res.type == "ovh:CloudProject/kubeNodePool:KubeNodePool":
        return "ovh", res.props.get("flavorName"), res.get("template.metadata.labels") or {}, res.get("template.spec.taints") or []
    if res.type == "scaleway:kubernetes/pool:Pool":
        return "scaleway", res.props.get("nodeType"), res.props.get("labels") or {}, res.props.get("taints") or []
    return None


BUCKET_TYPES = ("ovh:index/cloudStorageObjectBucket:CloudStorageObjectBucket", "scaleway:object/bucket:Bucket")


# -- stack rules -----------------------------------------------------------------------------------
def data_location(stack: Stack) -> list[str]:
    allowed, area = _allowed_countries(stack.settings), _area_name(stack.settings)
    problems = []
    for res in stack.resources:
        provider = PACKAGE_PROVIDER.get(res.package)
        if provider is None:
            continue
        countries = _location_countries(provider)
        for location in _locations(res):
            country = countries.get(location.lower())
            if country is None:
                problems.append(f"{res.label()}: {location!r} is not a location of {provider} whose country is known; it cannot be shown to be in {area}")
            elif country not in allowed:
                problems.append(f"{res.label()}: {location!r} is in {country}, not in {area}")
    country = stack.outputs.get("country")
    provider = stack.outputs.get("provider")
    if provider in ("existing", "baremetal") and isinstance(country, str) and country not in allowed:
        problems.append(f"the {'existing cluster' if provider == 'existing' else 'bare-metal servers'} run in {country} "
                        f"({provider}.country), not in {area}")
    return problems


def allowed_providers(stack: Stack) -> list[str]:
    allowed = stack.settings.allowed_providers
    problems = []
    provider = stack.outputs.get("provider")
    if isinstance(provider, str) and provider not in allowed:
        problems.append(f"the stack's provider {provider!r} is not allowed; allowed: {', '.join(allowed)}")
    for res in stack.resources:
        if res.package in NEUTRAL_PACKAGES:
            continue
        mapped = PACKAGE_PROVIDER.get(res.package)
        if mapped is None or mapped not in allowed:
            problems.append(f"{res.label()}: package {res.package!r} is not an allowed provider; allowed: {', '.join(allowed)}")
    return problems


def secnumcloud_only(stack: Stack) -> list[str]:
    provider = stack.outputs.get("provider")
    if provider in ("existing", "baremetal"):
        return [f"{'an existing cluster' if provider == 'existing' else 'bare-metal servers'}: their SecNumCloud "
                "qualification is not something this stack can show; record it with the operator's qualification "
                "evidence and except this rule with the reason"]
    cat = _catalog.load()
    facts = cat.provider_facts(provider) if isinstance(provider, str) else None
    region_name = stack.outputs.get("region")
    region = cat.region(provider, region_name) if facts is not None and isinstance(region_name, str) else None
    # a status recorded for the region (Outscale: cloudgouv-eu-west-1 apart) wins over the provider's
    status = region.secnumcloud if region is not None and region.secnumcloud else (facts.secnumcloud if facts else None)
    note = cat.sources.get(region.secnumcloud_source, "") if region is not None and region.secnumcloud else (
        facts.secnumcloud_note if facts else "")
    problems = []
    for pool in stack.outputs.get("pools") or []:
        if status != "qualified":
            shown = "unknown" if status is None else status.replace("_", " ")
            problems.append(
                f"pool {pool.get('name')!r} ({provider} {pool.get('flavor')}, region {region_name}): SecNumCloud status {shown}"
                + (f" ({note})" if note else "")
            )
    if problems:
        managed = "" if provider == "outscale" else (
            "; no managed-Kubernetes GPU offer in the catalog is known to be SecNumCloud-qualified")
        problems.insert(0, f"secnumcloud_only: {provider} in region {region_name} is not known to be SecNumCloud-qualified"
                           f"{managed}; this stack cannot be deployed under that requirement")
    return problems


def bucket_encryption_versioning(stack: Stack) -> list[str]:
    problems = []
    encrypted = {
        r.props.get("bucket")
        for r in stack.of_type("scaleway:object/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
        if any((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") for rule in r.props.get("rules") or [])
    }
    for res in stack.of_type(*BUCKET_TYPES):
        if res.package == "ovh":
            algo, status = res.get("encryption.algorithm"), res.get("versioning.status")
            if algo in (None, "PLAINTEXT"):
                problems.append(f"{res.label()}: not encrypted (encryption.algorithm {algo!r}); use AES256")
            if status != "ENABLED" and _known(status):
                problems.append(f"{res.label()}: versioning {status!r}; enable it so an overwrite or delete keeps the old version")
            elif status is None:
                problems.append(f"{res.label()}: versioning not set; enable it")
        else:
            if res.get("versioning.enabled") is not True:
                problems.append(f"{res.label()}: versioning not enabled")
            if res.props.get("name") not in encrypted:
                problems.append(f"{res.label()}: no server-side encryption configuration for this bucket")
    return problems


def managed_pool_support(res: Resource, settings: Settings) -> list[str]:
    pool = _pool_labels_taints(res)
    if pool is None or not isinstance(pool[1], str):
        return []
    offer = _catalog.load().offer(pool[0], pool[1])
    if offer is None or offer.managed_pool != "unverified":
        return []
    return [f"{res.label()}: {pool[1]} is sold as an instance, but no source records it working as a managed "
            f"node pool (catalog source {offer.managed_pool_source}); check with the provider before relying on it"]


def state_in_region(stack: Stack) -> list[str]:
    """The Pulumi state (every resource, the encrypted secrets) and the key of its secrets stay in
    the allowed area: a self-managed backend there, not a hosted service abroad."""
    state = stack.outputs.get("state")
    if not isinstance(state, dict):
        return []
    allowed, area = _allowed_countries(stack.settings), _area_name(stack.settings)
    url, kind, country = state.get("url") or "(the default)", state.get("kind"), state.get("country")
    problems = []
    if kind == "hosted":
        problems.append(f"state backend {url}: a hosted service{' in ' + country if country else ''}, not in {area}; "
                        "use the stack's own bucket (unset state.backend) or an S3 backend in the area")
    elif kind == "file":
        problems.append(f"state backend {url}: a local path on the deploying machine, which cannot be shown to be in {area}")
    elif kind != "s3":
        problems.append(f"state backend {url}: {str(url).split(':', 1)[0]} is a US company's object store, not in {area}")
    elif country is None:
        problems.append(f"state backend {url}: endpoint {state.get('endpoint')} is not one whose country is known")
    elif country not in allowed:
        problems.append(f"state backend {url}: in {country}, not in {area}")
    if state.get("encryption") in ABROAD_SECRETS:
        problems.append(f"secrets provider {state['encryption']}: {SECRETS_PROVIDERS[state['encryption']]}; "
                        "use a passphrase or hashivault:// with a Vault run in France")
    return problems


def images_in_stack_registry(stack: Stack) -> list[str]:
    """The training runtime's image comes from the stack's own registry (output ``image_registry``)."""
    registry, problems = stack.outputs.get("image_registry"), []
    for res in stack.of_type("kubernetes:trainer.kubeflow.org/v1alpha1:ClusterTrainingRuntime"):
        for path, image in walk(res.props.get("spec") or {}):
            if path.endswith(".image") and isinstance(image, str) and _known(image) and not (registry and image.startswith(f"{registry}/")):
                where = f"not the stack's registry {registry}" if registry else "the stack has no registry of its own (platform.image_registry)"
                problems.append(f"{res.label()}: image {image} is pulled from {image.split('/', 1)[0]}: {where}")
    return problems


def budget(stack: Stack) -> list[str]:
    info = (stack.outputs.get("costs") or {}).get("budget") or {}
    if info.get("state") == "exceeded":
        return [info.get("message", "the max-node monthly cost exceeds budget_eur_per_month")]
    return []


# -- resource rules --------------------------------------------------------------------------------
def gpu_pools_tainted(res: Resource, settings: Settings) -> list[str]:
    pool = _pool_labels_taints(res)
    if pool is None:
        return []
    provider, flavor, _, taints = pool
    if not _gpu_offer(provider, flavor):
        return []
    if any(t.get("key") == GPU_TAINT and t.get("effect") == "NoSchedule" for t in taints if isinstance(t, dict)):
        return []
    return [f"{res.label()}: GPU pool ({flavor}) without the {GPU_TAINT} NoSchedule taint: any pod could land on its GPUs"]


def required_labels(res: Resource, settings: Settings) -> list[str]:
    pool = _pool_labels_taints(res)
    if pool is not None:
        labels, what = pool[2], "node pool"
    elif res.type in BUCKET_TYPES:
        labels, what = res.props.get("tags") or {}, "bucket"
    else:
        return []
    if not isinstance(labels, dict):
        return []
    missing = [key for key in settings.required_labels if not labels.get(key)]
    if missing:
        return [f"{res.label()}: {what} without the label(s) {', '.join(missing)}; set them in infratech:labels"]
    return []


def helm_pinned(res: Resource, settings: Settings) -> list[str]:
    if res.type != "kubernetes:helm.sh/v3:Release":
        return []
    version, chart = res.props.get("version"), res.props.get("chart")
    problems = []
    if not isinstance(version, str) or not _EXACT_VERSION.match(version):
        problems.append(f"{res.label()}: chart {chart!r} version {version!r} is not an exact version")
    if not (isinstance(chart, str) and chart.startswith("oci://")) and not res.get("repositoryOpts.repo"):
        problems.append(f"{res.label()}: chart {chart!r} has no repository; a local or ambient chart is not reproducible")
    return problems


def no_latest_images(res: Resource, settings: Settings) -> list[str]:
    if res.package != "kubernetes":
        return []
    problems = []
    for path, value in walk(res.props):
        leaf = path.rsplit(".", 1)[-1]
        if leaf == "image" and isinstance(value, str) and _known(value) and "{{" not in value:
            why = imageref.pin_problem(value)
            if why:
                problems.append(f"{res.label()}: {path} {value!r} {why}; pin a version or digest")
        if leaf == "tag" and isinstance(value, str) and imageref.moving_tag_problem(value):
            problems.append(f"{res.label()}: {path} {imageref.moving_tag_problem(value)}; pin a version")
    return problems


def images_from_mirror(res: Resource, settings: Settings) -> list[str]:
    """With ``mirror:`` set, every image a Kubernetes resource or a chart's values name is the mirror's."""
    if res.package != "kubernetes" or not settings.mirror:
        return []
    release = res.type == "kubernetes:helm.sh/v3:Release"
    props = res.props.get("values") if release else res.props
    props = props if isinstance(props, dict) else {}
    problems = []
    refs = image_refs(props)
    for path, ref in refs:
        if _known(ref) and "{{" not in ref and not ref.startswith(settings.mirror):
            problems.append(f"{res.label()}: {path} {ref!r} is pulled from {ref.split('/', 1)[0]}, not the mirror {settings.mirror}")
    # an image the chart runs by default, left unset, would come from upstream: the table names them
    chart = res.props.get("chart") if release else None
    entry = mirror_table.CHARTS.get(chart.rstrip("/").rsplit("/", 1)[-1]) if isinstance(chart, str) else None
    if entry is not None:
        named = {path for path, _ in refs}
        for node in entry.nodes:
            if node.path not in named:
                problems.append(f"{res.label()}: {node.path} is not set, so the chart's default image from upstream runs")
    return problems


# -- the registry ----------------------------------------------------------------------------------
SNC = "SecNumCloud 3.2 §19.2 (data location in the EU, administration from the EU)"
RULES: tuple[Rule, ...] = (
    Rule("data-location", "Every resource, and an existing cluster, is in the allowed area (France by default, or the EU).",
         "Choose a region of the allowed area; policy.area: eu widens it to the European Union.", SNC, "stack", data_location),
    Rule("allowed-providers", "Only the allowed providers' resources are declared.",
         "Remove the foreign provider's resources, or list the provider in policy.allowed_providers.",
         "SecNumCloud 3.2 §19.6 (immunity from non-EU law) as a stack decision", "stack", allowed_providers),
    Rule("secnumcloud-only", "With policy.secnumcloud_only, only offers known to be SecNumCloud-qualified are used.",
         "Use a qualified offer (none of today's managed-Kubernetes GPU offers is; Outscale's cloudgouv-eu-west-1 is modelled as qualified) or drop the mode.",
         "ANSSI SecNumCloud qualification list; catalog provider facts", "stack", secnumcloud_only,
         active=lambda settings: settings.secnumcloud_only),
    Rule("bucket-encryption-versioning", "Object-storage buckets are encrypted at rest and versioned.",
         "Leave object_storage.buckets[].encryption and versioning on (the defaults).",
         "ANSSI guidance on data protection at rest; recovery from overwrite or deletion", "stack", bucket_encryption_versioning),
    Rule("bucket-not-public", "No bucket or object is readable without a credential: no public ACL or grant, no policy allowing Principal '*'.",
         "Use the private ACL, grant and allow named principals only; share data through credentials.",
         "ANSSI: no data exposed without authentication", "resource", bucket_not_public),
    Rule("api-restricted", "A public Kubernetes API endpoint answers only listed networks.",
         "List the networks that need the API in <provider>.api_allowed_cidrs.",
         "ANSSI recommendations for Kubernetes (administration interfaces not exposed)", "stack", api_restricted),
    Rule("deployer-reaches-api", "The API allow-list lets in the machine that runs `pulumi up`, which installs the platform.",
         "Put the deployer's egress address in <provider>.deployer_cidrs; replace documentation ranges with real networks.",
         "a deployment that can finish: the platform is applied through the cluster's API", "stack", deployer_reaches_api,
         default_level="advisory",
         pack_limitation="policy packs do not see stack outputs; infratech plan checks this rule"),
    Rule("managed-pool-support", "GPU pools use flavours a source records as working in the provider's managed Kubernetes.",
         "Prefer a flavour whose catalog entry says managed_pool: supported, or confirm with the provider.",
         "catalog managed_pool facts", "resource", managed_pool_support, default_level="advisory"),
    Rule("no-open-admin-ingress", "No VM security group opens SSH, the Kubernetes API, the RKE2 supervisor or the kubelet to the Internet "
         "(a range wider than a /8, a rule with no source, an accepting default policy).",
         "Allow ports 22, 6443, 9345 and 10250 from the admin networks (or inside the network) only.", "ANSSI recommendations for administration", "resource", no_open_admin_ingress),
    Rule("team-guardrails", "Team namespaces keep their guardrails: Pod Security restricted, a quota, default-deny networking, "
         "the team's RBAC, and every admission policy applied and bound.",
         "Leave platform.tenancy on (the default); where the cluster's owner isolates teams another way, except this rule "
         "with that reason in policy.exceptions.",
         "ANSSI recommendations for Kubernetes (isolation between tenants)", "stack", team_guardrails),
    Rule("gpu-pools-tainted", "GPU pools carry the nvidia.com/gpu NoSchedule taint, so only GPU workloads land there.",
         "Do not remove the taint the providers add; add tolerations to GPU workloads.", "cost and isolation of GPU nodes", "resource", gpu_pools_tainted),
    Rule("required-labels", "Every pool and bucket is labelled with its owner, team and cost centre.",
         "Set them in infratech:labels (policy.required_labels names the keys).", "cost attribution and accountability", "resource", required_labels),
    Rule("helm-pinned", "Every Helm release is pinned to an exact chart version from a named repository.",
         "Pin the chart in infratech/program/platform/charts.py.", "reproducible deployments; supply chain", "resource", helm_pinned),
    Rule("no-latest-images", "No image uses the tag latest or no tag.", "Pin a version tag or a digest.",
         "reproducible deployments; supply chain", "resource", no_latest_images),
    Rule("secrets-as-secrets", "Kubeconfigs, keys and passwords are Pulumi secrets in resources.",
         "Build them from Pulumi secrets (pulumi config set --secret, Output.secret).", "ANSSI: secrets encrypted in state",
         "resource", secrets_as_secrets,
         pack_limitation="policy packs see secret values unwrapped, not whether they are secrets; infratech plan checks this rule"),
    Rule("secret-outputs", "Stack outputs that hold credentials are Pulumi secrets.", "Export them with pulumi.Output.secret.",
         "ANSSI: secrets encrypted in state", "stack", secret_outputs,
         pack_limitation="policy packs do not see stack outputs; infratech plan checks this rule"),
    Rule("state-in-region", "The Pulumi state and the key of its secrets stay in the allowed area.",
         "Leave state.backend unset (a bucket of the stack's own provider and region) or name an S3 backend in the area; "
         "secrets: a passphrase or hashivault://.", SNC, "stack", state_in_region,
         pack_limitation="policy packs do not see stack outputs; infratech plan checks this rule"),
    Rule("images-in-stack-registry", "The training runtime's image comes from the stack's own registry (platform.image_registry).",
         "Set platform.image_registry to a registry in the area (Scaleway Container Registry rg.fr-par.scw.cloud/<namespace>, "
         "an OVHcloud Managed Private Registry <id>.<region>.container-registry.ovh.net/<project>), run `infratech images push STACK`, "
         "and leave platform.training_image unset (it then defaults to that registry).",
         "supply chain: what the cluster runs is the image built and tested here, held in the stack's area", "stack",
         images_in_stack_registry, default_level="advisory",
         pack_limitation="policy packs do not see stack outputs; infratech plan checks this rule"),
    Rule("images-from-mirror", "With mirror: set, every image the platform declares comes from the mirror.",
         "Run `infratech mirror list STACK`; add the image's chart to infratech/mirror/table.py so the program mirrors it, "
         "or set the image in the platform's values from the mirror.",
         "supply chain: an air-gapped or in-country deployment pulls from nowhere else", "resource", images_from_mirror,
         active=lambda settings: settings.mirror is not None),
    Rule("budget", "The stack's monthly cost at max nodes is within budget_eur_per_month.",
         "Raise the budget, lower max_nodes, or choose cheaper flavours (infratech cost compare).",
         "the stack's own budget", "stack", budget, default_level="advisory",
         pack_limitation="policy packs do not see the cost figures (a stack output); infratech plan checks this rule"),
)
BY_ID = {rule.id: rule for rule in RULES}
