"""What one full run of the workshop on AWS costs, line by line, from ``prices.json`` (the README's table).

Every quantity is a parameter of :class:`RunAssumptions`; :func:`workshop_run` prices them with
:mod:`helpers.cost`'s rates and :func:`markdown_table` writes the table a test keeps the README equal to.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.cost import (
    HOURS_PER_MONTH,
    _gb_seconds,
    efs_cost,
    invocation_cost,
    load_prices,
    provisioned_allocation_cost,
    sagemaker_monthly,
)

#: What one cold start reads from EFS, in MB: measured by 06's cold-cache scenario (``cold_cache.read_per_cold_start``:
#: the page-cache pages of the bundle's copy after one cold start, read-ahead included). 01, 04, the README's
#: table and the architecture picture all use this one figure (a test checks them).
COLD_START_READ_MB = 331.5  # make demo, 2026-12-07: 331.5 MB in each of 3 cold starts
COLD_START_READ_FILES = 789  # the files those pages belong to (each costs EFS round trips)
#: What 02 measured on EFS, in MB (the framework bundle: torch's CPU build and Pillow; the EfficientNet-Lite0 export),
#: and their archives in the artifact bucket. 01's text, 02's summary and the README's table all use these,
#: so a size reads the same everywhere (a test checks 01 and the README against them).
SEEDED_MB = {"framework": 540.4, "model": 18.9}
ARCHIVES_MB = {"framework": 163.8, "model": 17.4, "sagemaker model": 17.4}


@dataclass(frozen=True)
class RunAssumptions:
    """What one full run of the workshop (01 to 99 on AWS) uses; every number is a parameter."""

    hours: float = 3.0  # from 01's deploy to 99's delete: EFS and S3 storage bill for this long
    memory_mb: int = 2048
    provisioned_environments: int = 1
    provisioned_hours: float = 2.0  # from 03's deploy to 99
    provisioned_inits: int = 2  # Provisioned Concurrency environments initialised (each reads the bundle)
    provisioned_invocations: int = 300
    provisioned_billed_ms: float = 40
    cold_starts: int = 30  # 03's first calls and 04's forced cold starts and bursts
    cold_billed_ms: float = 2500  # init is billed on demand since August 2025
    warm_invocations: int = 300
    warm_billed_ms: float = 40
    seeder_runs: int = 2
    seeder_billed_ms: float = 120_000
    bundle_read_gb: float = round(COLD_START_READ_MB / 1000, 2)  # what one init reads from EFS (measured)
    cold_cache_copies: int = (
        0  # 06's cold-cache scenario on AWS only when asked (COLD_CACHE > 0): a copy each
    )
    burst_allocations: int = (
        2  # 04's provisioned burst and its exercise: a fresh version's own PC, each briefly
    )
    burst_allocation_minutes: float = 8  # allocated until deleted (readying takes minutes on AWS)
    efs_stored_gb: float = round(sum(SEEDED_MB.values()) / 1000, 2)  # the framework bundle and the model
    artifacts_gb: float = round(sum(ARCHIVES_MB.values()) / 1000, 2)  # the archives in the artifact bucket
    s3_requests: int = 50
    http_api_requests: int = 20
    logs_gb: float = 0.01
    sagemaker_pc_hours: float = 0.5  # 05's endpoint with one provisioned container, until 99 deletes it
    sagemaker_spill_pc_hours: float = (
        0.25  # 05's fresh spill endpoint (the provisioned configuration), its life
    )
    sagemaker_requests: int = 80  # 05's scenarios and first calls
    sagemaker_billed_ms: float = 100
    sagemaker_request_bytes: float = 70_000  # the sample image in, the JSON answer out


@dataclass(frozen=True)
class LineItem:
    item: str
    quantity: str
    usd: float


def workshop_run(run: RunAssumptions | None = None, arch: str = "x86_64") -> list[LineItem]:
    """A full run's cost, line by line, from prices.json; the last line is the total."""
    run = run or RunAssumptions()
    prices, gb = load_prices(), run.memory_mb / 1024
    rates = prices.for_arch(arch)
    reads = run.cold_starts + run.provisioned_inits
    items = [
        LineItem(
            "Provisioned Concurrency, allocated",
            f"{run.provisioned_environments} x {gb:g} GB x {run.provisioned_hours:g} h",
            run.provisioned_environments
            * gb
            * run.provisioned_hours
            * 3600
            * rates.provisioned_concurrency_gb_second,
        ),
        LineItem(
            "Provisioned Concurrency of 04's bursts (billed in 5-minute steps)",
            f"{run.burst_allocations} x {run.provisioned_environments} x {gb:g} GB x {run.burst_allocation_minutes:g} min",
            run.burst_allocations
            * provisioned_allocation_cost(
                run.provisioned_environments, run.memory_mb, run.burst_allocation_minutes * 60, arch
            ),
        ),
        LineItem(
            "Provisioned invocations",
            f"{run.provisioned_invocations} x {run.provisioned_billed_ms:g} ms",
            run.provisioned_invocations
            * (
                prices.per_request
                + _gb_seconds(run.provisioned_billed_ms, run.memory_mb) * rates.provisioned_duration_gb_second
            ),
        ),
        LineItem(
            "On-demand cold starts (init billed)",
            f"{run.cold_starts} x {run.cold_billed_ms:g} ms",
            run.cold_starts * invocation_cost(run.cold_billed_ms, run.memory_mb, arch),
        ),
        LineItem(
            "On-demand warm invocations",
            f"{run.warm_invocations} x {run.warm_billed_ms:g} ms",
            run.warm_invocations * invocation_cost(run.warm_billed_ms, run.memory_mb, arch),
        ),
        LineItem(
            "Seeder runs",
            f"{run.seeder_runs} x {run.seeder_billed_ms / 1000:g} s",
            run.seeder_runs * invocation_cost(run.seeder_billed_ms, run.memory_mb, arch),
        ),
        LineItem(
            "EFS Elastic Throughput, reads (every init reads the bundle)",
            f"{reads} x {run.bundle_read_gb:g} GB",
            efs_cost(gb_read=reads * run.bundle_read_gb),
        ),
        LineItem(
            "EFS Elastic Throughput, writes (seeding)",
            f"{run.efs_stored_gb:g} GB",
            efs_cost(gb_written=run.efs_stored_gb),
        ),
        LineItem(
            "EFS Elastic Throughput, 06's cold-cache copy, if asked (one read and one write of the bundle)",
            f"{run.cold_cache_copies} x {run.efs_stored_gb:g} GB",
            efs_cost(
                gb_read=run.cold_cache_copies * run.efs_stored_gb,
                gb_written=run.cold_cache_copies * run.efs_stored_gb,
            ),
        ),
        LineItem(
            "EFS storage",
            f"{run.efs_stored_gb:g} GB x {run.hours:g} h",
            efs_cost(gb_stored=run.efs_stored_gb, hours=run.hours),
        ),
        LineItem(
            "S3 artifact bucket (storage and requests)",
            f"{run.artifacts_gb:g} GB x {run.hours:g} h, {run.s3_requests} requests",
            run.artifacts_gb * run.hours / HOURS_PER_MONTH * prices.s3.storage_gb_month
            + run.s3_requests / 1000 * prices.s3.put_per_1000,
        ),
        LineItem(
            "HTTP API requests",
            f"{run.http_api_requests}",
            run.http_api_requests / 1e6 * prices.http_api_per_million,
        ),
        LineItem("CloudWatch Logs ingestion", f"{run.logs_gb:g} GB", run.logs_gb * prices.logs_ingest_gb),
        LineItem(
            "SageMaker serverless Provisioned Concurrency (05)",
            f"1 x {gb:g} GB x {run.sagemaker_pc_hours:g} h",
            sagemaker_monthly(0, 0, run.memory_mb, 0, provisioned=1, hours=run.sagemaker_pc_hours),
        ),
        LineItem(
            "SageMaker serverless Provisioned Concurrency, 05's fresh spill endpoint",
            f"1 x {gb:g} GB x {run.sagemaker_spill_pc_hours:g} h",
            sagemaker_monthly(0, 0, run.memory_mb, 0, provisioned=1, hours=run.sagemaker_spill_pc_hours),
        ),
        LineItem(
            "SageMaker serverless requests and data (05)",
            f"{run.sagemaker_requests} x {run.sagemaker_billed_ms:g} ms",
            sagemaker_monthly(
                run.sagemaker_requests, run.sagemaker_billed_ms, run.memory_mb, run.sagemaker_request_bytes
            ),
        ),
        LineItem("VPC, subnets, security groups, S3 gateway endpoint, network interfaces", "-", 0.0),
    ]
    return items + [LineItem("Total", "", sum(i.usd for i in items))]


def markdown_table(items: list[LineItem]) -> str:
    """The line items as a Markdown table (the total in bold), as the README shows them."""
    rows = ["| what | how much | USD |", "|---|---|---:|"]
    for i in items:
        if i.item == "Total":
            rows.append(f"| **Total** | | **{i.usd:.4f}** |")
        else:
            rows.append(f"| {i.item} | {i.quantity} | {i.usd:.4f} |")
    return "\n".join(rows)
