"""What to expect on AWS for this function: a range computed from this run and AWS's published figures.

No public measurement exists for this exact function (EfficientNet-Lite0, torch's CPU build on EFS, 2048 MB),
so the range is reasoned, and every input is printed with it:

- **CPU**: Lambda gives one vCPU per 1,769 MB (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
  Where the local sandbox scales CPU the same way, this run's init and duration carry over; where it does not,
  the function had all of this machine's cores, and AWS is slower by up to cores / vCPUs.
- **EFS**: every file a cold start opens costs network round trips (EFS General Purpose, Elastic throughput:
  reads as low as 250 µs, about 1 ms typically; each open is a lookup, an open and reads, about 3 round trips),
  and its bytes arrive at up to 1,500 MiB/s per client (https://docs.aws.amazon.com/efs/latest/ug/performance.html).
  The files and bytes are what this run's cold start read, measured with ``mincore`` (``helpers.cold_cache``).
- **Provisioned**: a provisioned environment has finished its init; a request costs what a warm one costs here,
  scaled by the same CPU factor.

The figures the workshop this one was seeded from published (11,135 ms cold and 2,951 ms provisioned, at 3008 MB)
were another model's: NTS-Net on CUB-200, downloading its image inside the handler. :data:`OTHER_MODEL` keeps them
with that label, for comparison only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from helpers import stats

#: Another model's figures (NTS-Net, CUB-200, image downloaded in the handler; AWS, 3008 MB): not this function's.
OTHER_MODEL = {
    "model": "NTS-Net (CUB-200), image downloaded by the handler",
    "memory_mb": 3008,
    "cold_ms": 11_135,
    "provisioned_ms": 2_951,
}
VCPU_MB = 1769
EFS_RTT_MS = (0.25, 1.0)  # per round trip, best case and typical (EFS performance page)
ROUND_TRIPS_PER_FILE = 3  # lookup, open, read
EFS_CLIENT_MIB_S = 1500  # the most one client reads per second (EFS performance page)
EFS_SLOW_MIB_S = 100  # a cautious figure for one small Lambda client (an assumption, said as one)


@dataclass(frozen=True)
class Expectation:
    """A low-high range in ms and how it was reached."""

    low_ms: float
    high_ms: float
    reasoning: str


def cpu_factor(memory_mb: int, cores_here: int, cpu_scaled_here: bool) -> tuple[float, float]:
    """How much slower CPU work runs on AWS than here (low, high): 1 when the sandbox scaled CPU as Lambda does."""
    if cpu_scaled_here:
        return 1.0, 1.0
    vcpus = memory_mb / VCPU_MB
    return 1.0, max(1.0, cores_here / vcpus)


def cold_start(
    init_ms: float, memory_mb: int, files: int, read_bytes: float, cores_here: int, cpu_scaled_here: bool
) -> Expectation:
    """A cold start's init on AWS: this run's init scaled for CPU, plus EFS round trips and transfer."""
    low_cpu, high_cpu = cpu_factor(memory_mb, cores_here, cpu_scaled_here)
    mib = read_bytes / 2**20
    low = init_ms * low_cpu + files * ROUND_TRIPS_PER_FILE * EFS_RTT_MS[0] + mib / EFS_CLIENT_MIB_S * 1000
    high = init_ms * high_cpu + files * ROUND_TRIPS_PER_FILE * EFS_RTT_MS[1] + mib / EFS_SLOW_MIB_S * 1000
    why = (
        f"init here {init_ms:,.0f} ms x CPU factor {low_cpu:.1f}-{high_cpu:.1f}, plus {files:,} files x "
        f"{ROUND_TRIPS_PER_FILE} round trips x {EFS_RTT_MS[0]:g}-{EFS_RTT_MS[1]:g} ms, plus {mib:,.0f} MiB at "
        f"{EFS_CLIENT_MIB_S:,}-{EFS_SLOW_MIB_S} MiB/s"
    )
    return Expectation(low, high, why)


def warm(duration_ms: float, memory_mb: int, cores_here: int, cpu_scaled_here: bool) -> Expectation:
    """A warm or provisioned request's duration on AWS: this run's, scaled for CPU."""
    low_cpu, high_cpu = cpu_factor(memory_mb, cores_here, cpu_scaled_here)
    return Expectation(
        duration_ms * low_cpu,
        duration_ms * high_cpu,
        f"duration here {duration_ms:,.1f} ms x CPU factor {low_cpu:.1f}-{high_cpu:.1f}",
    )


def table(
    medians: Mapping[str, Mapping[str, float | None]],
    memory_mb: int,
    files: int,
    read_bytes: float,
    cores_here: int,
    cpu_scaled_here: bool,
) -> str:
    """Markdown: here, the range expected on AWS and its reasoning, for a cold start and a provisioned request."""
    rows = []
    cold = medians.get("cold", {})
    if cold.get("init_ms"):
        e = cold_start(cold["init_ms"], memory_mb, files, read_bytes, cores_here, cpu_scaled_here)
        rows.append(
            {
                "": "cold start: init",
                "here (p50)": _ms(cold["init_ms"]),
                "AWS, expected": _range(e),
                "how": e.reasoning,
            }
        )
    prov = medians.get("provisioned") or medians.get("warm") or {}
    if prov.get("duration_ms"):
        e = warm(prov["duration_ms"], memory_mb, cores_here, cpu_scaled_here)
        rows.append(
            {
                "": "provisioned: Duration",
                "here (p50)": _ms(prov["duration_ms"]),
                "AWS, expected": _range(e),
                "how": e.reasoning,
            }
        )
    other = (
        f"\n\nNot this function: the {OTHER_MODEL['cold_ms']:,} ms cold start and {OTHER_MODEL['provisioned_ms']:,} ms "
        f"provisioned request that the workshop this one grew from published were {OTHER_MODEL['model']}, at "
        f"{OTHER_MODEL['memory_mb']} MB: a heavier model, and a network download inside every request."
    )
    return (
        stats.to_markdown(rows) if rows else "_No cold start or provisioned request in these records._"
    ) + other


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _range(e: Expectation) -> str:
    if round(e.low_ms) == round(e.high_ms):
        return f"about {_ms(e.low_ms)}"
    return f"{_ms(e.low_ms)} to {_ms(e.high_ms)}"
