"""The workshop's venv holds torch's CPU build and no CUDA library (issue 21: a light install)."""

from __future__ import annotations

from helpers import install_check


def test_this_venv_has_torchs_cpu_build_and_no_cuda_package():
    assert install_check.problems() == []
    assert install_check.torch_version().endswith("+cpu") and install_check.cuda_packages() == []


def test_a_cuda_build_or_nvidia_packages_are_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(install_check, "torch_version", lambda: "2.14.1")
    monkeypatch.setattr(install_check, "cuda_packages", lambda: ["nvidia-cublas", "triton"])
    found = install_check.problems()
    assert "torch 2.14.1 is not the CPU build" in found[0] and "make install" in found[0]
    assert found[1].endswith("nvidia-cublas, triton.")


def test_no_torchvision_nor_a_torch_range_that_pypi_would_answer_with_cuda():
    """The project pins torch exactly (a range would let pip pick PyPI's newer CUDA build) and lists no
    torchvision (PyPI's does not import beside the CPU torch)."""
    import tomllib

    from helpers.config import REPO_ROOT

    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in deps if d.startswith("torch")] == ["torch==2.13.0"]
    assert not any(d.startswith("torchvision") for d in deps)
