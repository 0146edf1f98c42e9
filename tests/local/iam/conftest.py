"""An in-process gate for the IAM tests: moto's WSGI app behind ``localaws.iam.middleware``, served by
werkzeug on a free loopback port in a thread (as ``localaws.server`` serves the real app), so that real
boto3 and AWS CLI requests are verified and decided by the IAM room. The server records each request's
outcome (``records``), so a test can assert what the gate decided, not only what the client saw."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from localaws.iam import Answer, Authorizer
from tests.conftest import free_port

ACCOUNT = "123456789012"
ROOT = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
AWS_CLI = str(Path(sys.executable).with_name("aws"))
NO_RETRY = Config(retries={"max_attempts": 1})


@dataclass
class Gate:
    url: str
    port: int
    authorizer: Authorizer
    records: list = field(default_factory=list)

    def client(self, service: str, creds: dict | None = None, **kwargs):
        kwargs.setdefault("endpoint_url", self.url)
        return boto3.client(service, region_name="us-east-1", **{**ROOT, **(creds or {})}, **kwargs)

    def since(self, start: int) -> list:
        return self.records[start:]

    def cli_env(self, creds: dict | None = None) -> dict:
        creds = {**ROOT, **(creds or {})}
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=creds["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=creds["aws_secret_access_key"],
            AWS_DEFAULT_REGION="us-east-1",
        )
        if creds.get("aws_session_token"):
            env["AWS_SESSION_TOKEN"] = creds["aws_session_token"]
        return env


@pytest.fixture(scope="session")
def gate():
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    authorizer = Authorizer(enabled=True)
    moto_app = DomainDispatcherApplication(create_backend_app)
    handle = Gate("", 0, authorizer)

    def app(environ, start_response):
        record = {"method": environ["REQUEST_METHOD"], "uri": environ.get("RAW_URI", "")}
        outcome = authorizer.check(environ)
        if isinstance(outcome, Answer):
            # a refusal, or an operation the IAM room answers itself (GetCallerIdentity of root, Simulate*)
            record.update(
                ok=outcome.code < 400,
                answered=True,
                status=outcome.code,
                body=outcome.body.decode(errors="replace"),
            )
            handle.records.append(record)
            return outcome.send(start_response)
        caller = outcome.caller
        record.update(
            ok=True,
            answered=False,
            caller=caller.arn if caller else None,
            operation=outcome.operation.name if outcome.operation else None,
        )
        handle.records.append(record)
        return moto_app(environ, start_response)

    port = free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    handle.url, handle.port = f"http://127.0.0.1:{port}", port
    yield handle
    httpd.shutdown()
    httpd.server_close()


def verified(gate, fn):
    """Run ``fn`` (moto's own errors are fine: the gate's verdict is what is checked) and return the
    gate's records of its requests, all of which must have been let through."""
    start = len(gate.records)
    try:
        fn()
    except botocore.exceptions.ClientError:
        pass
    records = gate.since(start)
    assert records, "no request reached the gate"
    assert all(r["ok"] for r in records), [r for r in records if not r["ok"]]
    return records


def refused(fn) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        fn()
    return caught.value


def code(err: botocore.exceptions.ClientError) -> str:
    return err.response["Error"]["Code"]
