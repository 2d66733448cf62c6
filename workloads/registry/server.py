"""A read-only Hugging Face Hub download endpoint over the registry's store.

Only what ``huggingface_hub`` (pinned in workloads/constraints-cpu.txt) reads to download a model:

- ``GET /api/models/{org}/{name}`` and ``.../revision/{rev}``: ``HfApi.model_info`` (hf_api.py) builds
  ``ModelInfo`` from ``id``, ``sha`` and ``siblings[].rfilename``; ``snapshot_download``
  (_snapshot_download.py) asserts ``sha`` is set and uses it as the commit.
- ``GET /api/models/{org}/{name}/tree/{rev}[/{path}]?recursive=``: ``HfApi._iter_repo_tree_pages``
  builds ``RepoFile`` from ``type``, ``path``, ``size``, ``oid`` and ``lfs`` {``oid``, ``size``,
  ``pointerSize``}; pages follow a ``Link: rel="next"`` header (utils/_pagination.py), none here.
- ``HEAD``/``GET /{org}/{name}/resolve/{rev}/{path}``: ``file_download.get_hf_file_metadata`` reads
  ``X-Repo-Commit`` (required: ``_get_metadata_or_catch_error`` fails without it), ``X-Linked-Etag``
  or ``ETag`` (required; the sha256 here, the cache's blob name) and ``X-Linked-Size`` or
  ``Content-Length``. ``http_get`` resumes with ``Range: bytes=N-``, answered with 206.
- Errors: ``utils/_http.hf_raise_for_status`` maps the ``X-Error-Code`` header: ``RepoNotFound`` ->
  RepositoryNotFoundError, ``RevisionNotFound`` -> RevisionNotFoundError, ``EntryNotFound`` ->
  RemoteEntryNotFoundError (with ``X-Repo-Commit``, so the client caches the absence), and reads
  ``X-Error-Message`` and the JSON body ``{"error": ...}`` for the message.

Every blob is hashed before it is sent: one whose bytes do not match its digest is answered 500 and
logged, never served. Anything but GET and HEAD is 405: the registry is written by ``publish`` only.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import UserError
from .store import CorruptObject, Store, check_path, check_repo

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


def _segments(raw_path: str) -> list[str]:
    return [unquote(s) for s in raw_path.split("/")[1:]]


class RegistryHandler(BaseHTTPRequestHandler):
    server_version = "infratech-registry"
    protocol_version = "HTTP/1.1"
    store: Store  # set on the server class

    # -- plumbing ----------------------------------------------------------------------------------
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not getattr(self.server, "quiet", False):
            super().log_message(format, *args)

    def _send_json(self, status: int, body: dict | list, headers: dict | None = None) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, err: HubError) -> None:
        # header values must be latin-1 (http.server): a non-ASCII path is escaped there, kept in the body
        headers = {"X-Error-Message": err.message.replace("\n", " ").encode("ascii", "backslashreplace").decode()}
        if err.code:
            headers["X-Error-Code"] = err.code
        if err.commit:
            headers["X-Repo-Commit"] = err.commit
        self._send_json(err.status, {"error": err.message}, headers)

    def _refuse_write(self) -> None:
        self.close_connection = True  # the request body is not read: the connection cannot be reused
        self._error(HubError(405, None, "this registry is read-only; models are added with "
                                        "`python -m workloads.registry publish`"))

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_write

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            seg = _segments(url.path)
            if seg[:2] == ["api", "models"] and len(seg) >= 4:
                self._api(seg[2:], parse_qs(url.query))
            elif len(seg) >= 5 and seg[2] == "resolve":
                self._resolve(f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
            else:
                raise HubError(404, None, f"no such route: {url.path}")
        except HubError as err:
            self._error(err)
        except UserError as err:  # a repo name or a path that is not allowed (e.g. '..')
            self._error(HubError(400, None, str(err)))
        except CorruptObject as err:
            self.log_error("refused to serve a corrupted object: %s", err)
            self._error(HubError(500, None, f"the stored object failed its digest check and is not served: {err}"))
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- lookups -----------------------------------------------------------------------------------
    def _revision(self, repo: str, revision: str) -> dict:
        check_repo(repo)
        if not self.store.has_repo(repo):
            raise HubError(404, "RepoNotFound", f"Repository {repo} not found in this registry")
        commit = self.store.resolve(repo, revision)
        manifest = self.store.manifest(repo, commit) if commit else None
        if manifest is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision} (repository {repo})")
        return manifest

    def _api(self, seg: list[str], query: dict) -> None:
        repo = f"{seg[0]}/{seg[1]}"
        rest = seg[2:]
        if not rest:
            self._send_json(200, self._info(self._revision(repo, "main")))
        elif rest[0] == "revision" and len(rest) == 2:
            self._send_json(200, self._info(self._revision(repo, rest[1])))
        elif rest[0] == "tree" and len(rest) >= 2:
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            self._tree(self._revision(repo, rest[1]), "/".join(rest[2:]), recursive)
        else:
            raise HubError(404, None, f"no such route under /api/models/{repo}")

    @staticmethod
    def _lfs(info: dict) -> dict:
        return {"oid": info["sha256"], "size": info["size"], "pointerSize": 134}

    @staticmethod
    def _hub_time(iso: str) -> str:
        """The Hub's timestamp form: utils/_datetime.parse_datetime accepts only ``...T..:..:...fZ``."""
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _info(self, m: dict) -> dict:
        siblings = [{"rfilename": path, "size": info["size"], "blobId": info["oid"],
                     "lfs": {"sha256": info["sha256"], "size": info["size"], "pointerSize": 134}}
                    for path, info in sorted(m["files"].items())]
        return {"_id": m["commit"], "id": m["repo"], "modelId": m["repo"], "sha": m["commit"],
                "private": False, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
                "lastModified": self._hub_time(m["published_at"]), "createdAt": self._hub_time(m["published_at"]),
                "tags": [],
                "library_name": "transformers", "siblings": siblings}

    def _tree(self, m: dict, under: str, recursive: bool) -> None:
        if under:
            check_path(under)
        prefix = f"{under}/" if under else ""
        entries, folders = [], set()
        for path, info in sorted(m["files"].items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/", 1)[0])
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                folders.update(prefix + "/".join(parts[:i + 1]) for i in range(len(parts)))
            entries.append({"type": "file", "path": path, "size": info["size"], "oid": info["oid"],
                            "lfs": self._lfs(info)})
        if under and not entries and not folders:
            raise HubError(404, "EntryNotFound", f"{under} does not exist at revision {m['commit']}",
                           commit=m["commit"])
        entries += [{"type": "directory", "path": f, "oid": "0" * 40, "size": 0} for f in sorted(folders)]
        self._send_json(200, sorted(entries, key=lambda e: e["path"]))

    # -- files -------------------------------------------------------------------------------------
    def _resolve(self, repo: str, revision: str, path: str) -> None:
        check_path(path)
        m = self._revision(repo, revision)
        info = m["files"].get(path)
        if info is None:
            raise HubError(404, "EntryNotFound", f"{path} does not exist at revision {m['commit']}",
                           commit=m["commit"])
        start, end = 0, info["size"] - 1
        status = 200
        wanted = self.headers.get("Range")
        if wanted:
            match = RANGE_RE.match(wanted.strip())
            if not match or (not match.group(1) and not match.group(2)):
                raise HubError(416, None, f"unsupported Range {wanted!r} (one bytes=START-[END] range)")
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), end) if match.group(2) else end
            else:  # bytes=-N: the last N bytes
                start = max(info["size"] - int(match.group(2)), 0)
            if start > end and info["size"]:
                raise HubError(416, None, f"Range {wanted!r} outside the file's {info['size']} bytes")
            status = 206
        headers = {"X-Repo-Commit": m["commit"], "ETag": f'"{info["sha256"]}"',
                   "X-Linked-Etag": f'"{info["sha256"]}"', "X-Linked-Size": str(info["size"]),
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if self.command == "HEAD":
            if not self.store.exists(self.store.blob_key(info["sha256"])):
                raise CorruptObject(f"blob {info['sha256']} of {path} is missing from the store")
            self._headers(status, headers, start, end, info["size"])
            return
        blob = self.store.verified_blob(info["sha256"], info["size"])
        try:
            self._headers(status, headers, start, end, info["size"])
            with open(blob, "rb") as fh:
                self.wfile.flush()
                # zero-copy from the verified file to the socket (os.sendfile under socket.sendfile)
                self.connection.sendfile(fh, offset=start, count=max(end - start + 1, 0))
        finally:
            if self.store.remote:
                blob.unlink(missing_ok=True)

    def _headers(self, status: int, headers: dict, start: int, end: int, size: int) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(max(end - start + 1, 0)))
        self.end_headers()


def make_server(store: Store, host: str = "127.0.0.1", port: int = 0, quiet: bool = False) -> ThreadingHTTPServer:
    handler = type("Handler", (RegistryHandler,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.quiet = quiet
    return server


def serve(store: Store, host: str, port: int) -> None:
    server = make_server(store, host, port)
    print(f"serving {store.url} read-only on http://{host}:{server.server_address[1]} "
          f"(HF_ENDPOINT=http://{host}:{server.server_address[1]})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["make_server", "serve"]
