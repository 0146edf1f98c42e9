"""What Lambda invocations cost, on demand and with Provisioned Concurrency, and where the two cross.

Prices come from ``prices.json`` next to this module (us-east-1, with their source and date; see its
``notes`` for what was and was not re-checked). A month is 730 hours. No free tier is applied.

On demand, an invocation costs the request price plus its billed duration times its memory (GB-s)
times the on-demand GB-s price. With Provisioned Concurrency, each environment is paid for every hour
it is allocated (memory times allocated seconds times the allocation price), and requests it serves
pay the request price plus billed GB-s at the lower provisioned duration price. Everything here
assumes that every request lands on a provisioned environment (none spill over to on-demand);
``monthly_cost_provisioned`` warns when the request rate makes that impossible.

What a Lambda + EFS workshop also spends, beside Lambda: EFS storage and Elastic Throughput (billed per
GB read and per GB written: every cold start reads the framework bundle from EFS, and seeding writes
it), the artifact bucket, HTTP API requests and CloudWatch Logs. ``workshop_run`` lists a full run's
cost line by line, and ``markdown_table`` renders it for the README (a test keeps the two in step).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PRICES_FILE = Path(__file__).with_name("prices.json")
HOURS_PER_MONTH = 730
ARCHITECTURES = ("x86_64", "arm64")
_ALIASES = {"x86": "x86_64", "amd64": "x86_64", "aarch64": "arm64"}


@dataclass(frozen=True)
class ArchitecturePrices:
    """USD per GB-second for one architecture."""

    on_demand_gb_second: float
    provisioned_concurrency_gb_second: float
    provisioned_duration_gb_second: float


@dataclass(frozen=True)
class EfsPrices:
    """USD for EFS Standard storage and Elastic Throughput data access."""

    source: str
    storage_gb_month: float
    elastic_read_gb: float
    elastic_write_gb: float


@dataclass(frozen=True)
class S3Prices:
    """USD for S3 Standard storage and requests."""

    source: str
    storage_gb_month: float
    put_per_1000: float
    get_per_1000: float


@dataclass(frozen=True)
class Prices:
    """The price list: where it came from, when, and the rates."""

    region: str
    source: str
    as_of: str
    rechecked_against_source: bool
    notes: tuple[str, ...]
    request_per_million: float
    architectures: dict[str, ArchitecturePrices]
    efs: EfsPrices
    s3: S3Prices
    http_api_per_million: float
    logs_ingest_gb: float
    sagemaker_serverless: dict[str, Any]  # SageMaker Serverless Inference's rates, with their source

    def for_arch(self, arch: str) -> ArchitecturePrices:
        """Rates for ``arch`` (``x86_64`` or ``arm64``; ``x86`` is accepted for ``x86_64``)."""
        name = _ALIASES.get(arch, arch)
        if name not in self.architectures:
            raise ValueError(f"Unknown architecture {arch!r}: use one of {', '.join(self.architectures)}.")
        return self.architectures[name]

    @property
    def per_request(self) -> float:
        return self.request_per_million / 1_000_000


@cache
def load_prices(path: Path = PRICES_FILE) -> Prices:
    """Read the price list (cached; the file is data shipped with the package)."""
    data = json.loads(Path(path).read_text())
    return Prices(
        region=data["region"],
        source=data["source"],
        as_of=data["as_of"],
        rechecked_against_source=data["rechecked_against_source"],
        notes=tuple(data["notes"]),
        request_per_million=data["request_per_million"],
        architectures={name: ArchitecturePrices(**rates) for name, rates in data["architectures"].items()},
        efs=EfsPrices(**data["efs"]),
        s3=S3Prices(**data["s3"]),
        http_api_per_million=data["api_gateway_http"]["per_million"],
        logs_ingest_gb=data["cloudwatch_logs"]["ingest_gb"],
        sagemaker_serverless=data["sagemaker_serverless"],
    )


def efs_cost(
    gb_read: float = 0.0, gb_written: float = 0.0, gb_stored: float = 0.0, hours: float = 0.0
) -> float:
    """USD for EFS: Elastic Throughput reads and writes per GB, plus ``gb_stored`` kept for ``hours``."""
    _check_non_negative(gb_read=gb_read, gb_written=gb_written, gb_stored=gb_stored, hours=hours)
    efs = load_prices().efs
    return (
        gb_read * efs.elastic_read_gb
        + gb_written * efs.elastic_write_gb
        + gb_stored * hours / HOURS_PER_MONTH * efs.storage_gb_month
    )


def cold_start_efs_cost(bundle_bytes: float, cold_starts: int = 1) -> float:
    """USD of EFS reads for ``cold_starts`` inits that each read a ``bundle_bytes`` framework bundle."""
    return efs_cost(gb_read=cold_starts * bundle_bytes / 1e9)


def invocation_cost(
    billed_ms: float, memory_mb: int, arch: str = "x86_64", efs_read_gb: float = 0.0
) -> float:
    """USD for one on-demand invocation: the request price plus billed GB-s at the on-demand price.

    ``efs_read_gb`` adds what the invocation reads from EFS at the Elastic Throughput read price: for a
    mix of requests, the cold-start fraction times the bundle size (a cold start reads the bundle).
    """
    prices = load_prices()
    return (
        prices.per_request
        + _gb_seconds(billed_ms, memory_mb) * prices.for_arch(arch).on_demand_gb_second
        + efs_cost(gb_read=efs_read_gb)
    )


def monthly_cost_on_demand(
    requests_per_month: float,
    billed_ms: float,
    memory_mb: int,
    arch: str = "x86_64",
    efs_read_gb: float = 0.0,
) -> float:
    """USD per month for ``requests_per_month`` on-demand invocations of ``billed_ms`` each (and their EFS reads)."""
    _check_non_negative(requests_per_month=requests_per_month)
    return requests_per_month * invocation_cost(billed_ms, memory_mb, arch, efs_read_gb)


def monthly_cost_provisioned(
    requests_per_month: float,
    billed_ms: float,
    memory_mb: int,
    arch: str = "x86_64",
    environments: int = 1,
    hours: float = HOURS_PER_MONTH,
) -> float:
    """USD per month with ``environments`` provisioned for ``hours``, all requests served by them.

    Allocation (environments x GB x hours x 3600 x allocation price) + duration (requests x billed GB-s x
    provisioned duration price) + requests (requests x request price). Assumes no request spills over
    to on-demand; logs a warning when the rate exceeds what the environments can serve back to back.
    """
    _check_non_negative(requests_per_month=requests_per_month, environments=environments, hours=hours)
    rates = load_prices().for_arch(arch)
    capacity = max_requests_per_month(billed_ms, environments, hours)
    if requests_per_month > capacity:
        logger.warning(
            "%.3g requests/month at %s ms exceed what %d provisioned environment(s) can serve (%.3g); "
            "the excess would spill over to on-demand, which this estimate does not price.",
            requests_per_month,
            billed_ms,
            environments,
            capacity,
        )
    allocation = (
        environments * _gb_seconds(hours * 3_600_000, memory_mb) * rates.provisioned_concurrency_gb_second
    )
    duration = requests_per_month * _gb_seconds(billed_ms, memory_mb) * rates.provisioned_duration_gb_second
    return allocation + duration + requests_per_month * load_prices().per_request


def max_requests_per_month(billed_ms: float, environments: int, hours: float = HOURS_PER_MONTH) -> float:
    """Requests ``environments`` can serve in ``hours`` if each takes ``billed_ms`` back to back (upper bound)."""
    if billed_ms <= 0:
        return math.inf
    return environments * hours * 3_600_000 / billed_ms


def break_even_requests_per_month(
    billed_ms: float,
    memory_mb: int,
    arch: str = "x86_64",
    environments: int = 1,
    hours: float = HOURS_PER_MONTH,
    billed_ms_provisioned: float | None = None,
    efs_read_gb: float = 0.0,
) -> float | None:
    """Requests per month above which Provisioned Concurrency costs less than on-demand, or None if never.

    Closed form: with allocation cost A per month, on-demand and provisioned billed GB-s per request
    g_od and g_pc and their prices p_od and p_pc (the request price is the same on both sides),
    on-demand = R (req + g_od p_od) and provisioned = A + R (req + g_pc p_pc) meet at
    R = A / (g_od p_od - g_pc p_pc). ``billed_ms_provisioned`` defaults to ``billed_ms``; pass it when the
    measured billed durations differ (on-demand cold starts bill their init, provisioned ones do not).
    ``efs_read_gb`` is what an on-demand request reads from EFS on average (cold-start fraction times the
    bundle); provisioned environments read it once at init, inside the allocation's hours.
    Returns None when provisioned never gets cheaper (the per-request saving is zero or negative).
    """
    _check_non_negative(environments=environments, hours=hours)
    rates = load_prices().for_arch(arch)
    provisioned_ms = billed_ms if billed_ms_provisioned is None else billed_ms_provisioned
    allocation = (
        environments * _gb_seconds(hours * 3_600_000, memory_mb) * rates.provisioned_concurrency_gb_second
    )
    saving_per_request = (
        _gb_seconds(billed_ms, memory_mb) * rates.on_demand_gb_second
        + efs_cost(gb_read=efs_read_gb)
        - _gb_seconds(provisioned_ms, memory_mb) * rates.provisioned_duration_gb_second
    )
    if saving_per_request <= 0:
        return None
    return allocation / saving_per_request


def cost_per_million(
    billed_ms: float,
    memory_mb: int,
    arch: str = "x86_64",
    environments: int = 0,
    requests_per_month: float | None = None,
    hours: float = HOURS_PER_MONTH,
    efs_read_gb: float = 0.0,
) -> float:
    """USD per million requests: on-demand when ``environments`` is 0, else provisioned at ``requests_per_month``.

    ``efs_read_gb`` (on demand): what a request reads from EFS, e.g. the bundle's size for cold starts.

    On demand the price per million does not depend on the rate; with Provisioned Concurrency the
    allocation is shared by the month's requests, so the rate is required.
    """
    if environments == 0:
        return 1_000_000 * invocation_cost(billed_ms, memory_mb, arch, efs_read_gb)
    if not requests_per_month:
        raise ValueError(
            "Provisioned cost per million needs requests_per_month > 0 to share the allocation over."
        )
    monthly = monthly_cost_provisioned(requests_per_month, billed_ms, memory_mb, arch, environments, hours)
    return monthly / requests_per_month * 1_000_000


def sagemaker_monthly(
    requests_per_month: float,
    duration_ms: float,
    memory_mb: int,
    bytes_per_request: float,
    provisioned: int = 0,
    hours: float = HOURS_PER_MONTH,
) -> float:
    """USD per month on a serverless endpoint: GB-seconds of request processing, data processed in and
    out, and with ``provisioned`` containers their GB-seconds for ``hours`` (the requests they serve then
    bill the lower provisioned duration price). Model setup (a cold start) is not billed."""
    prices, gb = load_prices().sagemaker_serverless, memory_mb / 1024
    seconds = requests_per_month * duration_ms / 1000
    data = requests_per_month * bytes_per_request / 1e9 * prices["data_processed_gb"]
    if not provisioned:
        return seconds * gb * prices["compute_gb_second"] + data
    allocation = provisioned * gb * hours * 3600 * prices["provisioned_concurrency_gb_second"]
    return allocation + seconds * gb * prices["provisioned_duration_gb_second"] + data


#: Provisioned Concurrency bills from the moment it is enabled until it is disabled, rounded up to the nearest
#: 5 minutes (AWS Lambda pricing, https://aws.amazon.com/lambda/pricing/): a 1-minute allocation bills 5.
PC_BILLING_STEP_S = 300


def provisioned_allocation_cost(
    environments: int, memory_mb: int, seconds: float, arch: str = "x86_64"
) -> float:
    """USD for ``environments`` allocated ``seconds``, rounded up to whole 5-minute steps as AWS bills."""
    _check_non_negative(environments=environments, seconds=seconds)
    billed_s = math.ceil(seconds / PC_BILLING_STEP_S) * PC_BILLING_STEP_S
    return (
        environments
        * _gb_seconds(billed_s * 1000, memory_mb)
        * load_prices().for_arch(arch).provisioned_concurrency_gb_second
    )


@dataclass(frozen=True)
class ColdMix:
    """On-demand traffic where a share of requests starts cold: a cold one bills its init too, and reads the
    bytes a cold start reads from EFS (Elastic Throughput bills every GB read)."""

    share: float  # of requests that start a new environment, 0 to 1
    warm_billed_ms: float
    cold_billed_ms: float
    read_bytes: float  # what one cold start reads from EFS

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise ValueError(f"The cold share is a fraction from 0 to 1, not {self.share}.")

    @property
    def billed_ms(self) -> float:
        """The average billed duration of a request."""
        return (1 - self.share) * self.warm_billed_ms + self.share * self.cold_billed_ms

    @property
    def efs_read_gb(self) -> float:
        """What a request reads from EFS on average."""
        return self.share * self.read_bytes / 1e9


def break_even_by_cold_share(
    mix: ColdMix,
    shares: tuple[float, ...],
    memory_mb: int,
    arch: str = "x86_64",
    environments: int = 1,
    billed_ms_provisioned: float | None = None,
) -> list[dict[str, Any]]:
    """For each cold share: the on-demand cost of a million requests and the break-even rate (None: never)."""
    rows = []
    for share in shares:
        m = ColdMix(share, mix.warm_billed_ms, mix.cold_billed_ms, mix.read_bytes)
        rate = break_even_requests_per_month(
            m.billed_ms, memory_mb, arch, environments,
            billed_ms_provisioned=billed_ms_provisioned, efs_read_gb=m.efs_read_gb,
        )  # fmt: skip
        rows.append(
            {
                "cold share": share,
                "on-demand per 1M": cost_per_million(m.billed_ms, memory_mb, arch, efs_read_gb=m.efs_read_gb),
                "break-even requests/month": rate,
                "utilisation": rate
                / max_requests_per_month(billed_ms_provisioned or mix.warm_billed_ms, environments)
                if rate
                else None,
            }
        )
    return rows


def _gb_seconds(ms: float, memory_mb: int) -> float:
    _check_non_negative(billed_ms=ms)
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be positive (the function's MemorySize), got {memory_mb}.")
    return ms / 1000 * memory_mb / 1024


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}.")
