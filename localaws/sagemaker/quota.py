"""The account's serverless concurrency quota, checked at CreateEndpoint as SageMaker checks it.

AWS: "the total concurrency you can share between all serverless endpoints per Region in your account" is a
quota of Service Quotas ("Maximum total concurrency that can be allocated across all serverless endpoints"),
and the ``MaxConcurrency`` of every serverless endpoint of the Region counts against it
(https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html, quotas:
https://docs.aws.amazon.com/general/latest/gr/sagemaker.html). Its default was 200 and is now 10 in the accounts
users report (https://repost.aws/questions/QUY0gXNLrdTH6eqqA4hv5FeA): 10 is what this server applies, so a
workshop that would need a quota increase fails here as it would on AWS.

A CreateEndpoint whose serverless ``MaxConcurrency`` would take the Region's total past the quota is refused
with ``ResourceLimitExceeded`` in the words SageMaker uses for its account-level limits; endpoints that are
``Failed`` hold no capacity. ``LOCALAWS_SAGEMAKER_SERVERLESS_CONCURRENCY`` (read when the server starts) sets
another quota, as an increase granted in Service Quotas would. ``ListServiceQuotas`` for ``sagemaker``
answers with it (stock moto 5.2.5 has no ListServiceQuotas: a 500), so a client reads the quota the same way
from AWS and from here (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html).
"""

from __future__ import annotations

import json
import os
from typing import Any

from moto.sagemaker.exceptions import SagemakerClientError

SETTING = "LOCALAWS_SAGEMAKER_SERVERLESS_CONCURRENCY"
DEFAULT = 10
NAME = "Maximum total concurrency that can be allocated across all serverless endpoints"


class ResourceLimitExceeded(SagemakerClientError):
    code = "ResourceLimitExceeded"

    def __init__(self, message: str):
        super().__init__(message)


def quota() -> int:
    """The Region's serverless concurrency quota: the setting, else AWS's default for new accounts."""
    try:
        return max(0, int(os.environ.get(SETTING, DEFAULT)))
    except ValueError:
        return DEFAULT


def _serverless_concurrency(backend: Any, config_name: str) -> int:
    config = backend.endpoint_configs.get(config_name)
    variants = getattr(config, "production_variants", None) or []
    return sum(int((v.get("ServerlessConfig") or {}).get("MaxConcurrency") or 0) for v in variants)


def in_use(backend: Any) -> int:
    """The serverless concurrency the Region's endpoints hold (``Failed`` ones hold none)."""
    return sum(
        _serverless_concurrency(backend, endpoint.endpoint_config_name)
        for endpoint in backend.endpoints.values()
        if endpoint.endpoint_status != "Failed"
    )


def check(backend: Any, endpoint_config_name: str) -> None:
    """Refuse an endpoint of ``endpoint_config_name`` that would take the total past the quota."""
    asking = _serverless_concurrency(backend, endpoint_config_name)
    if not asking:
        return
    limit, used = quota(), in_use(backend)
    if used + asking > limit:
        raise ResourceLimitExceeded(
            f"The account-level service limit '{NAME}' is {limit} Concurrency, with current utilization of "
            f"{used} Concurrency and a request delta of {asking} Concurrency. Please use AWS Service Quotas to "
            "request an increase for this quota. If AWS Service Quotas is not available, contact AWS support to "
            "request an increase for this quota."
        )


def list_service_quotas(response: Any) -> str:
    """``ListServiceQuotas`` on moto's Service Quotas responder: SageMaker's serverless concurrency quota;
    other services have none listed here (an empty list, as AWS gives a service with no applied quota)."""
    params = json.loads(response.body or "{}")
    quotas = []
    if params.get("ServiceCode") == "sagemaker":
        quotas.append(
            {
                "ServiceCode": "sagemaker",
                "ServiceName": "Amazon SageMaker",
                "QuotaCode": "L-serverless-total-concurrency",  # AWS's code is not published: a stand-in
                "QuotaName": NAME,
                "Value": float(quota()),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        )
    return json.dumps({"Quotas": quotas})
