"""What a serverless endpoint publishes: CloudWatch metrics per invocation and the container's logs.

Metrics (namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and ``VariantName``), as listed for
serverless endpoints in https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-monitoring.html
and defined in https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html:

- ``Invocations`` (1 per request that reached the model), ``Invocation4XXErrors`` and
  ``Invocation5XXErrors`` (1 or 0 per request, from the model's status);
- ``ModelLatency``: the time the container took to answer, seen from SageMaker (microseconds);
- ``OverheadLatency``: the rest of the request's time in SageMaker, which for a serverless endpoint
  includes the cold start (microseconds);
- ``ModelSetupTime``: the time to launch new compute for the endpoint, on a cold start only
  (microseconds): here from the container's spawn to its first healthy ``/ping``.

They go into moto's CloudWatch backend in-process, so ``get_metric_statistics`` and
``list_metrics`` see them as AWS publishes them. Logs: the container's stdout and stderr go to the log
group ``/aws/sagemaker/Endpoints/<EndpointName>``, one stream per container, ``<VariantName>/<id>``
(the console's link in a ``ModelError`` names that group), written through :mod:`localaws.logstreams`
as the Lambda engine writes its functions' logs.
"""

from __future__ import annotations

import logging
import time

from moto.cloudwatch.models import cloudwatch_backends

from localaws import logstreams

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"


def log_group(endpoint_name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def put_invocation_metrics(
    account_id: str,
    region: str,
    endpoint_name: str,
    variant_name: str,
    *,
    model_latency_us: float | None,
    overhead_latency_us: float,
    setup_time_us: float | None,
    status: int | None,
) -> None:
    """One invocation's metrics; ``status`` None when the request never reached a container."""
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint_name},
        {"Name": "VariantName", "Value": variant_name},
    ]
    data = [{"MetricName": "OverheadLatency", "Value": overhead_latency_us, "Unit": "Microseconds"}]
    if status is not None:
        data += [
            {"MetricName": "Invocations", "Value": 1, "Unit": "None"},
            {"MetricName": "Invocation4XXErrors", "Value": int(400 <= status < 500), "Unit": "None"},
            {"MetricName": "Invocation5XXErrors", "Value": int(status >= 500 or status == 0), "Unit": "None"},
        ]
    if model_latency_us is not None:
        data.append({"MetricName": "ModelLatency", "Value": model_latency_us, "Unit": "Microseconds"})
    if setup_time_us is not None:
        data.append({"MetricName": "ModelSetupTime", "Value": setup_time_us, "Unit": "Microseconds"})
    for datum in data:
        datum["Dimensions"] = dimensions
    try:
        cloudwatch_backends[account_id][region].put_metric_data(NAMESPACE, data)
    except Exception:  # noqa: BLE001 - metrics never fail an invocation
        log.exception("could not publish the metrics of %s", endpoint_name)


class ContainerLog:
    """One container's stream; the group and stream are created on the first write."""

    def __init__(self, account_id: str, region: str, endpoint_name: str, stream: str):
        self.group = log_group(endpoint_name)
        self.stream = stream
        self.arn = f"arn:aws:logs:{region}:{account_id}:log-group:{self.group}:log-stream:{stream}"
        self._stream = logstreams.Stream(account_id, region, self.group, stream)

    def write(self, lines: list[str]) -> None:
        self._stream.put(lines, int(time.time() * 1000))
