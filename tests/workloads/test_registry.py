"""The registry: a checkpoint trained by ``workloads.train`` (debug_tiny, 4 steps), judged by the real
gate, published into a store, and read back through the registry's server on 127.0.0.1 by the REAL
``huggingface_hub`` client (``snapshot_download``, ``hf_hub_download``, ``HfApi``) and by
``transformers.AutoModelForCausalLM.from_pretrained`` with ``HF_ENDPOINT`` set. Bad requests get the
Hub's error shape; a corrupted blob is refused. About 30 s on 2 cores, most of it the training run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("torch")
hf = pytest.importorskip("huggingface_hub")

from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError)

from workloads.errors import UserError  # noqa: E402
from workloads.registry.publish import publish  # noqa: E402
from workloads.registry.server import make_server  # noqa: E402
from workloads.registry.store import Store  # noqa: E402
from workloads_fakes import REPO, env, judge, promoted_model, train_cmd  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")
NAME = "infratech/debug-tiny"
CARD = {"license": "Apache-2.0", "languages": ["fr", "en"], "datasets": ["infratech/synthetic-fr-en"],
        "provider": "InfraTech Souveraine (tests)"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run directory whose ``export/`` the real gate promoted."""
    run = tmp_path_factory.mktemp("registry") / "run"
    proc = subprocess.run(train_cmd(run, "train.steps=4", "checkpoint.every=4", "train.device=cpu"),
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert judge(run / "export")["verdict"] == "promoted"
    return run


class Served:
    def __init__(self, store: Store):
        self.store = store
        self.server = make_server(store, quiet=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def get(self, path: str, method: str = "GET"):
        """(status, headers, body) of a raw request, errors included."""
        req = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def registry(trained, tmp_path_factory):
    store = Store(str(tmp_path_factory.mktemp("store")))
    manifest = publish(trained, NAME, store, log=lambda m: None, **CARD)
    served = Served(store)
    yield served, manifest
    served.close()


def test_snapshot_download_gets_every_file_with_its_digest(registry, tmp_path):
    served, manifest = registry
    local = Path(hf.snapshot_download(NAME, endpoint=served.url, cache_dir=tmp_path / "cache"))
    got = {p.relative_to(local).as_posix(): _sha(p) for p in local.rglob("*") if p.is_file()}
    assert got == {k: v["sha256"] for k, v in manifest["files"].items()}
    # the weights are those the gate promoted, and the commit is the revision's
    verdict = json.loads((local / "promotion.json").read_text())
    assert verdict["verdict"] == "promoted"
    for name, info in verdict["model"]["files"].items():
        assert got[name] == info["sha256"]
    assert local.name == manifest["commit"]


def test_hf_hub_download_by_branch_and_by_commit_and_model_info(registry, tmp_path):
    served, manifest = registry
    api = hf.HfApi(endpoint=served.url)
    info = api.model_info(NAME)
    assert info.sha == manifest["commit"]
    assert sorted(s.rfilename for s in info.siblings) == sorted(manifest["files"])
    assert api.model_info(NAME, revision=manifest["commit"]).sha == manifest["commit"]
    for rev in ("main", manifest["commit"]):
        path = Path(hf.hf_hub_download(NAME, "config.json", revision=rev, endpoint=served.url,
                                       cache_dir=tmp_path / rev))
        assert _sha(path) == manifest["files"]["config.json"]["sha256"]
    meta = hf.get_hf_file_metadata(hf.hf_hub_url(NAME, "model.safetensors", endpoint=served.url))
    assert (meta.commit_hash, meta.etag, meta.size) == (
        manifest["commit"], manifest["files"]["model.safetensors"]["sha256"],
        manifest["files"]["model.safetensors"]["size"])


def test_transformers_from_pretrained_with_hf_endpoint(registry, trained, tmp_path):
    served, _ = registry
    script = ("import sys, torch; from transformers import AutoModelForCausalLM, AutoTokenizer\n"
              f"m = AutoModelForCausalLM.from_pretrained({NAME!r}); t = AutoTokenizer.from_pretrained({NAME!r})\n"
              "ids = t('Bonjour', return_tensors='pt').input_ids\n"
              "print(m(ids).logits.shape[-1], m.config.vocab_size)\n")
    e = env(HF_ENDPOINT=served.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
    e.pop("HF_HUB_OFFLINE", None)
    e.pop("TRANSFORMERS_OFFLINE", None)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=e, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logits, vocab = proc.stdout.split()
    assert logits == vocab == str(json.loads((trained / "export" / "config.json").read_text())["vocab_size"])


def test_unknown_repo_revision_or_file_are_404_with_the_hubs_error_codes(registry, tmp_path):
    served, manifest = registry
    with pytest.raises(RepositoryNotFoundError):
        hf.hf_hub_download("infratech/nothing", "config.json", endpoint=served.url, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf.hf_hub_download(NAME, "config.json", revision="0" * 40, endpoint=served.url, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf.HfApi(endpoint=served.url).model_info(NAME, revision="v2")
    with pytest.raises(EntryNotFoundError):
        hf.hf_hub_download(NAME, "nope.bin", endpoint=served.url, cache_dir=tmp_path)
    status, headers, body = served.get(f"/{NAME}/resolve/main/nope.bin")
    assert (status, headers["X-Error-Code"], headers["X-Repo-Commit"]) == (404, "EntryNotFound", manifest["commit"])
    assert "nope.bin" in json.loads(body)["error"]


@pytest.mark.parametrize("path", [
    f"/{NAME}/resolve/main/..%2F..%2Frefs%2Fmain",
    f"/{NAME}/resolve/main/%2e%2e/config.json",
    f"/{NAME}/resolve/main/%2Fetc%2Fpasswd",
    "/infratech/..%2F..%2Fblobs/resolve/main/config.json",
    f"/api/models/{NAME}/tree/main/..%2F..",
])
def test_path_traversal_is_refused(registry, path):
    served, _ = registry
    status, _, body = served.get(path)
    assert status == 400, body
    assert "'..'" in json.loads(body)["error"]


def test_writes_are_refused(registry):
    served, _ = registry
    status, _, body = served.get(f"/api/models/{NAME}", method="DELETE")
    assert status == 405 and b"read-only" in body


def test_a_non_ascii_file_name_gets_a_404_not_a_broken_connection(registry):
    served, manifest = registry
    status, headers, body = served.get(f"/{NAME}/resolve/main/prix-%E2%82%AC.bin")
    assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")
    assert "prix-€.bin" in json.loads(body)["error"]


def test_a_corrupted_blob_is_detected_and_not_served(trained, tmp_path):
    store = Store(str(tmp_path / "store"))
    manifest = publish(trained, NAME, store, log=lambda m: None, **CARD)
    blob = tmp_path / "store" / "blobs" / "sha256" / manifest["files"]["config.json"]["sha256"]
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))
    served = Served(store)
    try:
        status, _, body = served.get(f"/{NAME}/resolve/main/config.json")
        assert status == 500 and b"digest check" in body
        with pytest.raises(HfHubHTTPError):
            hf.hf_hub_download(NAME, "config.json", endpoint=served.url, cache_dir=tmp_path / "cache")
        assert not list((tmp_path / "cache").rglob("config.json"))
        # the other files are intact and still served
        path = hf.hf_hub_download(NAME, "tokenizer.json", endpoint=served.url, cache_dir=tmp_path / "cache")
        assert _sha(Path(path)) == manifest["files"]["tokenizer.json"]["sha256"]
    finally:
        served.close()


def test_publish_refuses_an_unpromoted_checkpoint_with_the_gates_reasons(tmp_path):
    store = Store(str(tmp_path / "store"))
    rejected = promoted_model(tmp_path, promoted=False)
    with pytest.raises(UserError, match=r"(?s)not promoted.*heldout/perplexity = 500"):
        publish(rejected, NAME, store, log=lambda m: None)
    shutil.rmtree(rejected)
    never = promoted_model(tmp_path, promoted=None)
    with pytest.raises(UserError, match="never through the gate"):
        publish(never, NAME, store, log=lambda m: None)
    assert not (tmp_path / "store").exists()


def test_publish_is_content_addressed_and_idempotent(trained, tmp_path):
    store = Store(str(tmp_path / "store"))
    first = publish(trained, NAME, store, log=lambda m: None, **CARD)
    again = publish(trained, NAME, store, log=lambda m: None, **CARD)
    other = publish(trained, "infratech/copy", store, log=lambda m: None, **CARD)
    assert first["commit"] == again["commit"]  # same files, same revision
    assert other["commit"] != first["commit"]  # the card and summary name the repo
    assert other["files"]["model.safetensors"] == first["files"]["model.safetensors"]
    blobs = sorted(p.name for p in (tmp_path / "store" / "blobs" / "sha256").iterdir())
    assert blobs == sorted({v["sha256"] for m in (first, other) for v in m["files"].values()})
    assert (tmp_path / "store" / "models" / NAME / "refs" / "main").read_text().strip() == first["commit"]


def test_publish_needs_the_run_and_a_licence(trained, tmp_path):
    store = Store(str(tmp_path / "store"))
    with pytest.raises(UserError, match="--run-dir"):
        publish(promoted_model(tmp_path), NAME, store, log=lambda m: None, **CARD)
    with pytest.raises(UserError, match="--license: give"):
        publish(trained, NAME, store, log=lambda m: None, **{**CARD, "license": None})
    with pytest.raises(UserError, match="--license 'Apache 2': expected an SPDX"):
        publish(trained, NAME, store, log=lambda m: None, **{**CARD, "license": "Apache 2"})
    with pytest.raises(UserError, match="--language 'French'"):
        publish(trained, NAME, store, log=lambda m: None, **{**CARD, "languages": ["French"]})
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("args, message", [
    (["publish", "{model}", "--repo", "no-slash", "--store", "{store}", "--license", "MIT"], "repo 'no-slash': expected ORG/NAME"),
    (["publish", "{tmp}/missing", "--repo", NAME, "--store", "{store}", "--license", "MIT"], "missing: no such directory"),
    (["publish", "{model}", "--repo", NAME, "--store", "s3://@checkpoints/registry", "--license", "MIT"], "S3_BUCKET_CHECKPOINTS"),
    (["serve", "--store", "{store}", "--port", "70000"], "--port 70000"),
])
def test_cli_names_the_bad_field_without_a_traceback(tmp_path, args, message):
    model = promoted_model(tmp_path)
    args = [a.format(model=model, store=tmp_path / "store", tmp=tmp_path) for a in args]
    e = env()
    e.pop("S3_BUCKET_CHECKPOINTS", None)
    proc = subprocess.run([sys.executable, "-m", "workloads.registry", *args], cwd=REPO, env=e,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_through_the_s3_protocol_with_the_command_line(trained, tmp_path):
    """The store on moto's S3 server (the stand-in for OVHcloud / Scaleway object storage, named
    as such: no S3 server package installs here), written and served by the real command lines."""
    import socket
    import time

    from s3_standin import SlowS3, _free_port

    with SlowS3() as s3:
        e = env(**s3.env())
        url = "s3://@checkpoints/registry"
        proc = subprocess.run([sys.executable, "-m", "workloads.registry", "publish", str(trained), "--repo", NAME,
                               "--store", url, "--license", "Apache-2.0", "--language", "fr"], cwd=REPO, env=e,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert any(k.startswith("registry/blobs/sha256/") for k in s3.keys("registry/"))
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "workloads.registry", "serve", "--store", url,
                                   "--port", str(port)], cwd=REPO, env=e, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:  # readiness, not a timed assertion: the port opens once the server listens
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            endpoint = f"http://127.0.0.1:{port}"
            local = Path(hf.snapshot_download(NAME, endpoint=endpoint, cache_dir=tmp_path / "cache"))
            export = trained / "export"
            for p in export.rglob("*"):
                if p.is_file() and not p.name.startswith(".") and p.name != "README.md":  # the card is regenerated
                    assert _sha(local / p.relative_to(export)) == _sha(p), p
            # a blob overwritten in the bucket is refused, not served
            sha = _sha(export / "config.json")
            s3.client().put_object(Bucket=s3.bucket, Key=f"registry/blobs/sha256/{sha}", Body=b"{}")
            with pytest.raises(HfHubHTTPError, match="digest check"):
                hf.hf_hub_download(NAME, "config.json", endpoint=endpoint, cache_dir=tmp_path / "cache2")
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_the_lineage_chains_dataset_run_checkpoint_evaluation_promotion(registry, trained, tmp_path):
    from workloads.data.shards import manifest_sha256
    from workloads.registry.lineage import verify

    served, manifest = registry
    path = hf.hf_hub_download(NAME, "lineage.json", endpoint=served.url, cache_dir=tmp_path)
    lineage = json.loads(Path(path).read_text())
    assert verify(lineage) == []
    data, run, ckpt, evaluation, promotion = lineage["records"]
    assert data["manifest_sha256"] == manifest_sha256(json.loads((trained / "data" / "manifest.json").read_text()))
    assert [s["sha256"] for s in data["shards"]] == [
        s["sha256"] for s in json.loads((trained / "data" / "manifest.json").read_text())["shards"]]
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    head = git.stdout.strip() or None  # not a git checkout: the run recorded none
    last = json.loads((trained / "metrics.jsonl").read_text().splitlines()[-1])
    assert (run["git_commit"], run["world_size"], run["tokens_seen"], run["steps"]) == (head, 1, last["tokens_seen"], 4)
    assert run["config"] == json.loads((trained / "config.json").read_text()) and run["gpu_hours"] == 0.0
    verdict = json.loads((trained / "export" / "promotion.json").read_text())
    assert ckpt["files"] == verdict["model"]["files"]
    assert evaluation["results_sha256"] == _sha(trained / "export" / "evaluation" / "results.json")
    assert promotion["promotion_sha256"] == _sha(trained / "export" / "promotion.json")
    assert promotion["verdict"] == "promoted" and manifest["lineage_head"] == promotion["sha256"]
    # a record changed after the fact breaks the chain, and says where
    run["tokens_seen"] = 10 ** 12
    assert any(p.startswith("training-run: hashes to") for p in verify(lineage))


def test_infratech_models_show_prints_the_checked_chain(registry, tmp_path, capsys):
    from infratech.cli.app import main

    served, manifest = registry
    store = served.store.url
    assert main(["models", "show", f"{NAME}:{manifest['commit']}", "--store", store]) == 0
    out = capsys.readouterr().out
    for kind in ("dataset", "training-run", "checkpoint", "evaluation", "promotion"):
        assert f"\n{kind}  sha256 " in out
    assert "chain: intact" in out and "model.safetensors  sha256 " + manifest["files"]["model.safetensors"]["sha256"] in out
    assert main(["models", "show", NAME, "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["commit"] == manifest["commit"]
    assert main(["models", "show", f"{NAME}:v9", "--store", store]) == 2
    assert "no revision 'v9'" in capsys.readouterr().err
    assert main(["models", "show", "infratech/other", "--store", store]) == 2
    assert "not in the registry" in capsys.readouterr().err
    assert main(["models", "show", "../x", "--store", store]) == 2
    assert "expected ORG/NAME" in capsys.readouterr().err


def test_the_model_card_parses_back_with_huggingface_hubs_card_classes(registry, tmp_path):
    from huggingface_hub import ModelCard

    served, manifest = registry
    card = ModelCard.load(hf.hf_hub_download(NAME, "README.md", endpoint=served.url, cache_dir=tmp_path))
    data = card.data
    assert (data.license, data.language, data.datasets, data.library_name) == (
        "apache-2.0", ["fr", "en"], ["infratech/synthetic-fr-en"], "transformers")
    assert data.model_name == NAME
    lineage = json.loads(Path(hf.hf_hub_download(NAME, "lineage.json", endpoint=served.url,
                                                 cache_dir=tmp_path)).read_text())
    scores = lineage["records"][3]["scores"]
    got = {r.metric_type: r.metric_value for r in data.eval_results}
    assert got == scores and {r.dataset_type for r in data.eval_results} == {"cpu_smoke"}
    for section in ("## Training data", "## Training procedure", "## Evaluation", "## Lineage", "## Licence"):
        assert f"\n{section}\n" in card.text
    assert f"git commit `{lineage['records'][1]['git_commit']}`" in card.text
    assert "(report/report.md)" in card.text  # the run report's card, extended, not a second writer


def test_the_ai_act_training_content_summary_has_the_templates_three_parts(registry, tmp_path):
    served, _ = registry
    text = Path(hf.hf_hub_download(NAME, "training_content_summary.md", endpoint=served.url,
                                   cache_dir=tmp_path)).read_text()
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        f"# Public summary of training content: {NAME}",
        "## 1. General information", "### 1.1 Provider identification", "### 1.2 Model identification",
        "### 1.3 Modalities, overall training data size and other characteristics",
        "## 2. List of data sources", "### 2.1 Publicly available datasets",
        "### 2.2 Private non-publicly available datasets obtained from third parties",
        "### 2.3 Data crawled and scraped from online sources", "### 2.4 User data", "### 2.5 Synthetic data",
        "### 2.6 Other sources of data",
        "## 3. Data processing aspects",
        "### 3.1 Respect of reservation of rights from the text and data mining exception or limitation",
        "### 3.2 Removal of illegal content", "### 3.3 Other information"]
    assert "provider: InfraTech Souveraine (tests)" in text and "languages: fr, en" in text
    # the run's synthetic corpus, under the category its dataset record gives, with its licence
    synthetic = text.split("### 2.5 Synthetic data\n")[1].split("###")[0]
    assert "corpus.jsonl (licence CC0-1.0" in synthetic
    assert "not applicable: generated" in text.split("### 3.1")[1].split("### 3.2")[0]
    assert "email 0" not in text and "none found" in text.split("### 3.2")[1].split("### 3.3")[0]


@pytest.mark.parametrize("spdx, expected", [
    ("Apache-2.0", {"license": "apache-2.0"}), ("GPL-3.0-only", {"license": "gpl-3.0"}),
    ("ODC-By-1.0", {"license": "odc-by"}), ("etalab-2.0", {"license": "etalab-2.0"}),
    ("CC-BY-SA-4.0", {"license": "cc-by-sa-4.0"}),
    ("BlueOak-1.0.0", {"license": "other", "license_name": "blueoak-1.0.0",
                       "license_link": "https://spdx.org/licenses/BlueOak-1.0.0.html"}),
    ("LicenseRef-Corpus-FR", {"license": "other", "license_name": "licenseref-corpus-fr"}),
])
def test_spdx_ids_map_to_the_hubs_licence_ids(spdx, expected):
    from workloads.registry.cards import hf_license

    assert hf_license(spdx) == expected


def test_a_range_request_resumes_a_download(registry, trained):
    served, manifest = registry
    whole = (trained / "export" / "model.safetensors").read_bytes()
    req = urllib.request.Request(f"{served.url}/{NAME}/resolve/main/model.safetensors", headers={"Range": "bytes=100-"})
    with urllib.request.urlopen(req) as r:
        assert (r.status, r.headers["Content-Range"]) == (206, f"bytes 100-{len(whole) - 1}/{len(whole)}")
        assert r.read() == whole[100:]
    req = urllib.request.Request(f"{served.url}/{NAME}/resolve/main/model.safetensors", headers={"Range": "lines=1-"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 416
