"""Time the bare model: the handler's preprocessing and EfficientNet-Lite0 forward pass, in this process.

Run: ``.venv/bin/python bench/bench_model.py``. Exports the model (the package's ImageNet weights) into a
temporary folder, loads it as the inference handler does (``torch.load(mmap=True, weights_only=True)``
into ``functions/inference/efficientnet.py``'s EfficientNet-Lite0) and
times decoding (Pillow), preprocessing and the forward pass on the notebooks' sample photo:
medians after a warm-up, at a fixed thread count. This is the floor the Lambda handler's warm Duration is compared with
(``bench/bench_handler.py`` measures both in one run). It prints and never asserts.
"""

from __future__ import annotations

import io
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from helpers import model, samples

THREADS = 2
WARM_UP = 5
RUNS = 30


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def main() -> None:
    logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(THREADS)
    network = model.network()
    image = samples.read()
    with tempfile.TemporaryDirectory(prefix="bench-model-") as folder:
        model.export(folder)
        start = time.perf_counter()
        net = network.EfficientNetLite0()
        net.load_state_dict(torch.load(Path(folder) / model.WEIGHTS_FILE, mmap=True, weights_only=True))
        net.eval()
        load_ms = _ms(start)

        def run() -> tuple[float, float, float]:
            start = time.perf_counter()
            decoded = Image.open(io.BytesIO(image))
            decoded.load()
            decode = _ms(start)
            start = time.perf_counter()
            batch = network.preprocess(decoded)
            preprocess = _ms(start)
            start = time.perf_counter()
            with torch.inference_mode():
                net(batch)
            return decode, preprocess, _ms(start)

        for _ in range(WARM_UP):
            run()
        decode, preprocess, forward = (
            list(column) for column in zip(*(run() for _ in range(RUNS)), strict=True)
        )

    total = [d + p + f for d, p, f in zip(decode, preprocess, forward, strict=True)]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {samples.SAMPLE} ({len(image)} bytes)"
    )
    print(f"load (construct + torch.load mmap + load_state_dict): {load_ms:.1f} ms")
    print(f"medians of {RUNS} runs after {WARM_UP} warm-up runs:")
    print(f"  decode (Pillow)        {statistics.median(decode):7.1f} ms")
    print(f"  preprocess             {statistics.median(preprocess):7.1f} ms")
    print(f"  forward                {statistics.median(forward):7.1f} ms")
    print(
        f"  all three              {statistics.median(total):7.1f} ms "
        f"(min {min(total):.1f}, max {max(total):.1f}): the floor for the handler's warm Duration"
    )


if __name__ == "__main__":
    main()
