"""A slow, fallible S3 endpoint: moto's S3 server (the accepted stand-in for a provider's S3; no
cloud here) behind a WSGI layer that can slow down, hold or refuse object writes.

The trainer talks to it with its real boto3 client (``AWS_ENDPOINT_URL=http://127.0.0.1:PORT``),
so the code path is the one used against OVHcloud or Scaleway. Used by
``test_train_upload.py`` and ``benchmarks/checkpoint_upload.py``.

- ``bytes_per_s``: PUT bodies are read at this rate (a slow link: the client's send blocks);
- ``hold(key)``: while it returns True, a PUT of ``key`` waits (all held PUTs together at most
  ``hold_max_s`` from the first one held, so a trainer that never gets past it is not stuck);
- ``refuse(key)``: when it returns True, a PUT of ``key`` gets ``403 AccessDenied``, an error that
  botocore's standard retry mode does not retry (botocore/retries/standard.py: transient means
  connection errors and HTTP 500/502/503/504; throttling means 429 and throttling codes).

``events`` lists ``(monotonic time, "PUT"|"REFUSED", key)`` for each write answered.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import Callable, Optional

REGION = "fr-par"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlowS3:
    def __init__(self, bytes_per_s: Optional[float] = None, hold: Optional[Callable[[str], bool]] = None,
                 hold_max_s: float = 60.0, refuse: Optional[Callable[[str], bool]] = None):
        self.bytes_per_s, self.hold, self.hold_max_s, self.refuse = bytes_per_s, hold, hold_max_s, refuse
        self.events: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._hold_until: Optional[float] = None
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # moto keeps its buckets per process: one bucket per stand-in, so each starts empty
        self.bucket = f"team-a-checkpoints-{self.port}"

    # ---- the WSGI layer in front of moto -------------------------------------------------------
    def _app(self, moto_app):
        def app(environ, start_response):
            if environ["REQUEST_METHOD"] != "PUT":
                return moto_app(environ, start_response)
            key = environ.get("PATH_INFO", "").lstrip("/").partition("/")[2]
            body = self._read(environ)
            if key and self.hold is not None:
                with self._lock:  # one deadline for all held writes, from the first one held
                    self._hold_until = self._hold_until or time.monotonic() + self.hold_max_s
                while self.hold(key) and time.monotonic() < self._hold_until:
                    time.sleep(0.02)
            if key and self.refuse is not None and self.refuse(key):
                self._event("REFUSED", key)
                xml = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                       b"<Message>Access Denied (refused by the test stand-in)</Message></Error>")
                start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                                 ("Content-Length", str(len(xml)))])
                return [xml]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            out = moto_app(environ, start_response)
            if key:
                self._event("PUT", key)
            return out

        return app

    def _read(self, environ) -> bytes:
        from werkzeug.wsgi import get_input_stream

        stream = get_input_stream(environ)
        chunks, chunk = [], 64 * 1024
        while True:
            t0 = time.monotonic()
            data = stream.read(chunk)
            if not data:
                break
            chunks.append(data)
            if self.bytes_per_s:
                time.sleep(max(0.0, len(data) / self.bytes_per_s - (time.monotonic() - t0)))
        return b"".join(chunks)

    def _event(self, what: str, key: str) -> None:
        with self._lock:
            self.events.append((time.monotonic(), what, key))

    # ---- life cycle ------------------------------------------------------------------------------
    def start(self) -> "SlowS3":
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class Quiet(MotoRequestHandler):
            def log_request(self, *args, **kwargs):  # one line per request would drown the test output
                pass

        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", self.port, self._app(moto_app), threaded=True, request_handler=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.client().create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()

    def env(self) -> dict:
        """The object-store variables a training pod gets from its namespace's Secret."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test-key",
                "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_REGION": REGION, "S3_BUCKET_CHECKPOINTS": self.bucket}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id="test-key",
                            aws_secret_access_key="test-secret")

    def keys(self, prefix: str = "") -> list[str]:
        page = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in page.get("Contents", []))

    def __enter__(self) -> "SlowS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
