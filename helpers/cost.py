"""What Lambda invocations cost, on demand and with Provisioned Concurrency, and where the two cross.

Prices come from ``prices.json`` next to this module (us-east-1, with their source and date; see its
``notes`` for what was and was not re-checked). A month is 730 hours. No free tier is applied.

On demand, an invocation costs the request price plus its billed duration times its memory (GB-s)
times the on-demand GB-s price. With Provisioned Concurrency, each environment is paid for every hour
it is allocated (memory times allocated seconds times the allocation price), and requests it serves
pay the request price plus billed GB-s at the lower provisioned duration price. Everything here
assumes that every request lands on a provisioned environment (none spill over to on-demand);
``monthly_cost_provisioned`` warns when the request rate makes that impossible.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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
class Prices:
    """The price list: where it came from, when, and the rates."""

    region: str
    source: str
    as_of: str
    rechecked_against_source: bool
    notes: tuple[str, ...]
    request_per_million: float
    architectures: dict[str, ArchitecturePrices]

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
    )


def invocation_cost(billed_ms: float, memory_mb: int, arch: str = "x86_64") -> float:
    """USD for one on-demand invocation: the request price plus billed GB-s at the on-demand price."""
    prices = load_prices()
    return prices.per_request + _gb_seconds(billed_ms, memory_mb) * prices.for_arch(arch).on_demand_gb_second


def monthly_cost_on_demand(
    requests_per_month: float, billed_ms: float, memory_mb: int, arch: str = "x86_64"
) -> float:
    """USD per month for ``requests_per_month`` on-demand invocations of ``billed_ms`` each."""
    _check_non_negative(requests_per_month=requests_per_month)
    return requests_per_month * invocation_cost(billed_ms, memory_mb, arch)


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
) -> float | None:
    """Requests per month above which Provisioned Concurrency costs less than on-demand, or None if never.

    Closed form: with allocation cost A per month, on-demand and provisioned billed GB-s per request
    g_od and g_pc and their prices p_od and p_pc (the request price is the same on both sides),
    on-demand = R (req + g_od p_od) and provisioned = A + R (req + g_pc p_pc) meet at
    R = A / (g_od p_od - g_pc p_pc). ``billed_ms_provisioned`` defaults to ``billed_ms``; pass it when the
    measured billed durations differ (on-demand cold starts bill their init, provisioned ones do not).
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
) -> float:
    """USD per million requests: on-demand when ``environments`` is 0, else provisioned at ``requests_per_month``.

    On demand the price per million does not depend on the rate; with Provisioned Concurrency the
    allocation is shared by the month's requests, so the rate is required.
    """
    if environments == 0:
        return 1_000_000 * invocation_cost(billed_ms, memory_mb, arch)
    if not requests_per_month:
        raise ValueError(
            "Provisioned cost per million needs requests_per_month > 0 to share the allocation over."
        )
    monthly = monthly_cost_provisioned(requests_per_month, billed_ms, memory_mb, arch, environments, hours)
    return monthly / requests_per_month * 1_000_000


def _gb_seconds(ms: float, memory_mb: int) -> float:
    _check_non_negative(billed_ms=ms)
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be positive (the function's MemorySize), got {memory_mb}.")
    return ms / 1000 * memory_mb / 1024


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}.")
