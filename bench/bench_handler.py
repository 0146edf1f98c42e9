"""Measure the inference handler on the local Lambda engine against the bare model in this process.

Run: ``.venv/bin/python bench/bench_handler.py``. Starts its own local AWS (temporary state folder,
free port), puts EfficientNet-Lite0 on a local EFS access point, deploys ``functions/inference`` with 2048 MB,
prints the figures, stops the server and cleans up. It prints and never asserts; the goal is that of
the inference issue: the handler's warm Duration over the bare model's preprocess + forward time on
the same image, with the same thread count, measured in the same run, is <= 1.2.

Handler invocations and bare runs alternate, so both see the same machine load. The weights are the
package's ImageNet weights (no download).
"""

from __future__ import annotations

import base64
import io
import os
import statistics
import time
from pathlib import Path

import torch
from common import client, lambda_role, local_aws
from PIL import Image

from helpers import functions, model, samples
from helpers.invoke import Invocation, invoke
from tests.efs_framework import install_framework

MEMORY_MB = 2048
WARM_UP = 5
WARM_INVOCATIONS = 30
FUNCTION = "bench-inference"


def _threads(memory_mb: int) -> int:
    """The handler's thread count for ``memory_mb`` (``app._threads``; importing app would load its model)."""
    return max(1, min(os.cpu_count() or 1, memory_mb // 1769))


def _seed_efs(url: str, state_dir: Path) -> tuple[str, Path]:
    """Create a file system and an access point on ``/ml``, export the model into it.

    Returns the access point's ARN and the local folder that ``/mnt/ml/model/current`` maps to.
    """
    efs = client(url, "efs")
    fs_id = efs.create_file_system(CreationToken=FUNCTION)["FileSystemId"]
    access_point = efs.create_access_point(FileSystemId=fs_id, RootDirectory={"Path": "/ml"})
    models = state_dir / "efs" / fs_id / "ml" / "model"  # where the local engine mounts that access point
    model.export(models / "versions" / "v1")
    (models / "current").symlink_to("versions/v1")
    install_framework(models.parent)  # in the sandbox torch exists only there, as the seeder leaves it
    return access_point["AccessPointArn"], models / "current"


def _deploy(url: str, access_point_arn: str) -> None:
    role = lambda_role(url)
    lam = client(url, "lambda")
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": functions.build_zip("inference").data},
        MemorySize=MEMORY_MB,
        Timeout=60,
        FileSystemConfigs=[{"Arn": access_point_arn, "LocalMountPath": "/mnt/ml"}],
        Environment={
            "Variables": {"MODEL_DIR": "/mnt/ml/model/current", "FRAMEWORK_DIR": "/mnt/ml/framework/current"}
        },
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=FUNCTION, WaiterConfig={"Delay": 0.1})  # as on AWS


class BareModel:
    """The handler's model and preprocessing, loaded from the same files, run in this process."""

    def __init__(self, weights: Path, threads: int):
        network = model.network()
        self.preprocess = network.preprocess
        self.model = network.EfficientNetLite0()
        self.model.load_state_dict(torch.load(weights, mmap=True, weights_only=True))
        self.model.eval()
        torch.set_num_threads(threads)

    def time_ms(self, image: bytes) -> float:
        """Milliseconds for preprocess + forward of one encoded image."""
        start = time.perf_counter()
        batch = self.preprocess(Image.open(io.BytesIO(image)))
        with torch.inference_mode():
            self.model(batch)
        return (time.perf_counter() - start) * 1000


def _invoke(lam, payload: dict) -> Invocation:
    inv = invoke(FUNCTION, payload, client=lam).raise_for_error()
    if inv.report is None or "timing_ms" not in inv.payload:
        raise RuntimeError(f"{FUNCTION} returned no REPORT or no timing_ms: {str(inv.payload)[:200]}")
    return inv


def measure(url: str, model_dir: Path) -> None:
    image = samples.read()
    payload = {"image": base64.b64encode(image).decode()}
    threads = _threads(MEMORY_MB)
    bare = BareModel(model_dir / model.WEIGHTS_FILE, threads)
    lam = client(url, "lambda")

    cold = _invoke(lam, payload)
    for _ in range(WARM_UP):
        _invoke(lam, payload)
        bare.time_ms(image)
    durations, bares, timings = [], [], []
    for _ in range(WARM_INVOCATIONS):
        inv = _invoke(lam, payload)
        durations.append(inv.report.duration_ms)
        timings.append(inv.payload["timing_ms"])
        bares.append(bare.time_ms(image))

    duration, bare_ms = statistics.median(durations), statistics.median(bares)
    parts = {key: statistics.median(t[key] for t in timings) for key in ("decode", "preprocess", "inference")}
    print(
        f"image {samples.SAMPLE} ({len(image)} bytes), {MEMORY_MB} MB, {threads} threads, medians of {WARM_INVOCATIONS}"
    )
    print(
        f"cold start: Init Duration {cold.report.init_duration_ms:.1f} ms, Duration {cold.report.duration_ms:.1f} ms"
    )
    print(
        f"handler warm Duration {duration:.1f} ms; bare preprocess + forward {bare_ms:.1f} ms; "
        f"ratio {duration / bare_ms:.2f} (goal <= 1.2)"
    )
    print(
        "handler timing_ms: "
        + ", ".join(f"{key} {value:.1f}" for key, value in parts.items())
        + f"; Duration minus these {duration - sum(parts.values()):.1f} ms"
    )


def main() -> None:
    with local_aws("bench-handler") as (url, state_dir):
        access_point_arn, model_dir = _seed_efs(url, state_dir)
        _deploy(url, access_point_arn)
        measure(url, model_dir)


if __name__ == "__main__":
    main()
