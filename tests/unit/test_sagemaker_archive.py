"""localaws.sagemaker.archive: the model archive extracted once per content, safely under concurrency."""

from __future__ import annotations

import os

from helpers import sagemaker_model
from localaws.sagemaker import archive


def test_two_endpoints_extracting_the_same_model_at_once_both_get_the_folder(tmp_path, monkeypatch):
    """Seen in 05: two endpoints of one model were created together, and the second rename failed with
    ENOTEMPTY because the first had just put the same folder in place."""
    data = sagemaker_model.pack({"weights.txt": b"w\n", "code/inference.py": b"# handler\n"})
    real_replace = os.replace

    def other_endpoint_first(src, dst):
        monkeypatch.setattr(os, "replace", real_replace)
        archive.extract(data, tmp_path)  # the other endpoint wins the race
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", other_endpoint_first)
    folder = archive.extract(data, tmp_path)
    assert (folder / "weights.txt").read_bytes() == b"w\n"
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # the loser's staging folder is gone
