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
(the console's link in a ``ModelError`` names that group). moto's logs backend is not thread-safe:
writes share the Lambda engine's lock.
"""

from __future__ import annotations

import logging
import time

from moto.cloudwatch.models import cloudwatch_backends
from moto.logs.exceptions import ResourceAlreadyExistsException, ResourceNotFoundException
from moto.logs.models import logs_backends

from localaws.lambda_engine.logs import _write_lock

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
        self._backend = logs_backends[account_id][region]
        self._created = False

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        millis = int(time.time() * 1000)
        events = [{"timestamp": millis, "message": line} for line in lines]
        with _write_lock:
            try:
                if not self._created:
                    self._create()
                self._backend.put_log_events(self.group, self.stream, events)
            except ResourceNotFoundException:  # the group was deleted under a live container
                self._create()
                self._backend.put_log_events(self.group, self.stream, events)

    def _create(self) -> None:
        if self.group not in self._backend.groups:
            try:
                self._backend.create_log_group(self.group, {})
            except ResourceAlreadyExistsException:
                pass
        try:
            self._backend.create_log_stream(self.group, self.stream)
        except ResourceAlreadyExistsException:
            pass
        self._created = True
