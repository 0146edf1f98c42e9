"""Runs INSIDE an environment's namespace, as a function would: reads one JSON request per line on stdin
(``{"probe": name, "read_timeout": s}``) and answers one JSON line with what happened. The SDK finds the
AWS addresses through the ``AWS_ENDPOINT_URL*`` variables the network plan sets, as a function's would."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config


def _client(service: str, read_timeout: float, **kwargs):
    config = Config(connect_timeout=3, read_timeout=read_timeout, retries={"max_attempts": 1})
    return boto3.client(service, config=config, **kwargs)


def _wrong_scope(read_timeout: float) -> str:
    """A request signed for Lambda, sent to S3's address."""
    url = os.environ["AWS_ENDPOINT_URL_S3"] + "/"
    request = AWSRequest(method="GET", url=url, headers={"Host": url.split("/")[2]})
    SigV4Auth(boto3.Session().get_credentials(), "lambda", "us-east-1").add_auth(request)
    try:
        urllib.request.urlopen(
            urllib.request.Request(url, headers=dict(request.headers)), timeout=read_timeout
        )
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read().decode()}"
    return "answered"


def _internet(read_timeout: float) -> str:
    request = urllib.request.Request("http://192.88.99.10/cat.jpg", headers={"Host": "images.example"})
    with urllib.request.urlopen(request, timeout=read_timeout) as answer:
        return f"{answer.status} {len(answer.read())} bytes"


PROBES = {
    "s3": lambda t: len(_client("s3", t).list_buckets()["Buckets"]),
    "lambda": lambda t: len(_client("lambda", t).list_functions()["Functions"]),
    "s3 via generic": lambda t: len(
        _client("s3", t, endpoint_url=os.environ["AWS_ENDPOINT_URL"]).list_buckets()["Buckets"]
    ),
    "sts via generic": lambda t: _client(
        "sts", t, endpoint_url=os.environ["AWS_ENDPOINT_URL"]
    ).get_caller_identity()["Account"],
    "wrong scope": _wrong_scope,
    "internet": _internet,
}


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        try:
            result = {"ok": True, "result": PROBES[request["probe"]](request.get("read_timeout", 60))}
        except Exception as exc:  # noqa: BLE001 - the probe reports what the function would see
            result = {"ok": False, "error": type(exc).__name__, "message": str(exc)[:300]}
        result["seconds"] = round(time.monotonic() - started, 2)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
