"""The README's learner path works as written: its images and files exist, and `make lab` runs as root."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_learners_path_comes_before_the_two_commands():
    assert README.index("make lab") < README.index("make demo") < README.index("make test")


def test_every_relative_link_and_image_in_the_readme_exists():
    targets = re.findall(r"\]\((?!https?:|#)([^)\s]+)\)", README)
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert targets and not missing, f"README links to files that are not in the repository: {missing}"


def test_the_readme_shows_an_image_of_the_expected_results():
    images = re.findall(r"!\[[^\]]*\]\((images/expected-[^)]+\.png)\)", README)
    assert images and all((ROOT / i).stat().st_size > 10_000 for i in images)


def test_make_lab_allows_root_exactly_when_run_as_root():
    out = subprocess.run(
        ["make", "-n", "-s", "lab"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    lab = [line for line in out.splitlines() if "jupyter lab" in line]
    assert lab, out
    assert ("--allow-root" in lab[-1]) == (os.geteuid() == 0)


def test_the_curl_example_posts_a_file_the_learner_has():
    assert 'get_sample_data("grace_hopper.jpg", asfileobj=False)' in README
    assert re.search(r"curl .*--data-binary @\"\$IMAGE\"", README)
