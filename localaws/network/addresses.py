"""The addresses an execution environment sees inside its network namespace, and how its SDK finds them.

On AWS a function reaches each service at its own host name (``lambda.us-east-1.amazonaws.com``), and
what its network allows is decided per destination. Here each modelled service gets an address of its
own in 198.18.0.0/24 (RFC 2544's benchmarking block, never routed on the internet), made local inside
the namespace, where a listener the server holds answers on port 80. The SDK is pointed at them with the
service-specific endpoint variables botocore reads since 1.31, ``AWS_ENDPOINT_URL_<SERVICE_ID>``
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html), plus the generic
``AWS_ENDPOINT_URL`` for every other service, whose requests are told apart by their SigV4 credential
scope (``Credential=<key>/<date>/<region>/<service>/aws4_request``,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).

Separate addresses matter because a connection AWS would not route must *time out* at connect (a
filter on that service's listener drops the SYN, see :mod:`.bpf`), and because a scope cannot tell
SageMaker's API from its runtime (both sign as ``sagemaker``).

Services are keyed by their VPC endpoint name, the ``<name>`` of ``com.amazonaws.<region>.<name>``
(https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-privatelink-support.html), which is
what the reachability evaluator matches route tables and endpoints against.

Only plain HTTP is served: code that builds ``https://...amazonaws.com`` URLs itself cannot reach these
addresses (the certificate would not verify), which the integration notes say.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

AWS_NETWORK = "198.18.0.0/24"
GENERIC_ADDRESS = "198.18.0.1"
RUNTIME_API = ("127.0.0.1", 9001)  # AWS_LAMBDA_RUNTIME_API, as on Lambda
HTTP_PORT = 80

GENERIC = "aws"  # the listener name of the generic AWS_ENDPOINT_URL address
RUNTIME = "runtime"  # the listener name of the Runtime API


@dataclass(frozen=True)
class Service:
    """One AWS service with an address of its own.

    ``client`` is boto3's client name, ``endpoint`` the VPC endpoint name, ``signing`` the service in
    the SigV4 scope, ``protocol`` botocore's wire protocol (how an error must be written), ``variable``
    the endpoint variable botocore reads for it.
    """

    client: str
    endpoint: str
    signing: str
    protocol: str
    address: str
    variable: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"


SERVICES: tuple[Service, ...] = (
    Service("s3", "s3", "s3", "rest-xml", "198.18.0.10", "AWS_ENDPOINT_URL_S3"),
    Service("lambda", "lambda", "lambda", "rest-json", "198.18.0.11", "AWS_ENDPOINT_URL_LAMBDA"),
    Service("sts", "sts", "sts", "query", "198.18.0.12", "AWS_ENDPOINT_URL_STS"),
    Service("sagemaker", "sagemaker.api", "sagemaker", "json", "198.18.0.13", "AWS_ENDPOINT_URL_SAGEMAKER"),
    Service(
        "sagemaker-runtime",
        "sagemaker.runtime",
        "sagemaker",
        "rest-json",
        "198.18.0.14",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    ),
    Service("logs", "logs", "logs", "json", "198.18.0.15", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"),
    Service(
        "efs", "elasticfilesystem", "elasticfilesystem", "rest-json", "198.18.0.16", "AWS_ENDPOINT_URL_EFS"
    ),
    Service("dynamodb", "dynamodb", "dynamodb", "json", "198.18.0.17", "AWS_ENDPOINT_URL_DYNAMODB"),
    Service("ec2", "ec2", "ec2", "ec2", "198.18.0.18", "AWS_ENDPOINT_URL_EC2"),
    Service(
        "cloudformation",
        "cloudformation",
        "cloudformation",
        "query",
        "198.18.0.19",
        "AWS_ENDPOINT_URL_CLOUDFORMATION",
    ),
    Service("iam", "iam", "iam", "query", "198.18.0.20", "AWS_ENDPOINT_URL_IAM"),
    Service(
        "apigatewayv2",
        "apigateway",
        "apigateway",
        "rest-json",
        "198.18.0.21",
        "AWS_ENDPOINT_URL_APIGATEWAYV2",
    ),
    Service("sqs", "sqs", "sqs", "json", "198.18.0.22", "AWS_ENDPOINT_URL_SQS"),
    Service("sns", "sns", "sns", "query", "198.18.0.23", "AWS_ENDPOINT_URL_SNS"),
)
BY_CLIENT = {service.client: service for service in SERVICES}
BY_ENDPOINT = {service.endpoint: service for service in SERVICES}

# SageMaker's runtime operations are the only ones under /endpoints/ (InvokeEndpoint, its async and
# streaming forms); everything else signed ``sagemaker`` is the API.
_SAGEMAKER_RUNTIME_PATH = "/endpoints/"


def endpoint_of(signing: str, path: str) -> str:
    """The VPC endpoint name a request signed for ``signing`` is for (its service when none is modelled)."""
    if signing == "sagemaker":
        return "sagemaker.runtime" if path.startswith(_SAGEMAKER_RUNTIME_PATH) else "sagemaker.api"
    for service in SERVICES:
        if service.signing == signing:
            return service.endpoint
    return signing


@dataclass(frozen=True)
class Listener:
    """A TCP listener created inside the namespace: ``name`` is a service's client name, ``GENERIC``,
    ``RUNTIME`` or an internet host's ``internet:<name>:<port>``; ``target`` is where an internet host's
    connections are relayed to on this machine."""

    name: str
    kind: str  # "aws", "internet" or "runtime"
    address: str
    port: int
    target: tuple[str, int] | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Plan:
    """Everything the namespace of one environment needs: the prefixes made local on ``lo``, the
    listeners (in the order the launcher creates and hands them over), the SDK's endpoint variables and
    the lines of the sandbox's ``/etc/hosts``."""

    local_prefixes: tuple[str, ...]
    listeners: tuple[Listener, ...]
    variables: dict[str, str] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()

    def listener(self, name: str) -> Listener:
        return next(listener for listener in self.listeners if listener.name == name)


def plan(internet_hosts: tuple = (), *, runtime_api: bool = True) -> Plan:
    """The plan for an environment: the Runtime API, the generic and per-service AWS addresses, and the
    published internet hosts (:class:`.internet.InternetHost`)."""
    listeners: list[Listener] = []
    if runtime_api:
        listeners.append(Listener(RUNTIME, "runtime", *RUNTIME_API))
    listeners.append(Listener(GENERIC, "aws", GENERIC_ADDRESS, HTTP_PORT))
    listeners.extend(Listener(s.client, "aws", s.address, HTTP_PORT) for s in SERVICES)
    prefixes = [AWS_NETWORK]
    hosts = ["127.0.0.1 localhost"]
    for host in internet_hosts:
        listeners.append(Listener(host.listener_name, "internet", host.address, host.port, host.target))
        network = str(ipaddress.ip_network(f"{host.address}/24", strict=False))
        if network not in prefixes:
            prefixes.append(network)
        line = f"{host.address} {host.name}"
        if line not in hosts:
            hosts.append(line)
    variables = {"AWS_ENDPOINT_URL": f"http://{GENERIC_ADDRESS}"}
    variables.update({s.variable: s.url for s in SERVICES})
    return Plan(tuple(prefixes), tuple(listeners), variables, tuple(hosts))


def hosts_file(the_plan: Plan) -> str:
    """The sandbox's ``/etc/hosts``: localhost and the published internet hosts, nothing of this machine."""
    return "".join(line + "\n" for line in the_plan.hosts)


# With nothing listening on 127.0.0.1:53 inside the namespace, a name that is not in /etc/hosts fails
# at once ("Temporary failure in name resolution") instead of waiting on the host's resolver, which the
# namespace cannot reach.
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
