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
    assert "from helpers import samples; print(samples.path())" in README
    assert re.search(r"curl .*--data-binary @\"\$IMAGE\"", README)


def test_the_readme_names_no_closed_service_as_a_place_to_run():
    """Issue 21: AWS Cloud9 is closed to new customers; the README may say so, never send learners there."""
    for line in README.splitlines():
        if "Cloud9" in line:
            assert "closed to new customers" in line, line


def test_the_readme_states_the_install_size_and_time_and_no_contradictory_times():
    assert re.search(r"Measured on a fresh clone here: a [\d.]+ GB venv[\s\S]{0,200}? in [\d.]+ min", README)
    assert (
        "never branch" not in README
        and "1.5 hours for the core path on AWS, 3 hours with everything" in README
    )
