"""Template excerpts come from the file itself: the key's block, its comments, nothing of the next key."""

from __future__ import annotations

import pytest

from helpers import excerpts

YAML = """Resources:
  # the function
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Environment:
        Variables:
          MODEL_DIR: /mnt/ml/model/current

      # mounts EFS
      FileSystemConfigs:
        - LocalMountPath: /mnt/ml
      Timeout: 30
  # the next resource
  Alias:
    Type: AWS::Lambda::Alias
"""


def test_a_block_is_the_key_its_children_and_the_comments_right_above_it():
    lines = YAML.splitlines()
    assert excerpts.block(lines, "Resources.Function.Properties.FileSystemConfigs") == [
        "      # mounts EFS",
        "      FileSystemConfigs:",
        "        - LocalMountPath: /mnt/ml",
    ]
    function = excerpts.block(lines, "Resources.Function")
    assert function[0] == "  # the function" and function[-1] == "      Timeout: 30"


def test_a_missing_key_is_named():
    with pytest.raises(KeyError, match="'Nope'"):
        excerpts.block(YAML.splitlines(), "Resources.Function.Nope")


def test_the_function_template_shows_what_makes_the_lesson():
    text = excerpts.excerpt(
        "function",
        "Resources.Function.Properties.FileSystemConfigs",
        "Resources.Function.Properties.VpcConfig",
        "Resources.Function.Properties.Environment",
        "Resources.ProvisionedAlias",
    )
    assert text.count("```") == 2
    for needle in (
        "LocalMountPath: /mnt/ml",
        "SubnetIds",
        "MODEL_DIR: /mnt/ml",
        "ProvisionedConcurrentExecutions",
    ):
        assert needle in text
    assert "HttpApi" not in text


def test_code_excerpts_show_lines_between_markers_and_whole_functions_from_the_file():
    from helpers import excerpts

    text = excerpts.code("functions/inference/app.py", ("FRAMEWORK_DIR =", "import torch"), "_load")
    assert text.startswith("`functions/inference/app.py`:\n\n```python\nFRAMEWORK_DIR = ")
    assert "sys.path.insert(0, FRAMEWORK_DIR)" in text and "mmap=True" in text and text.endswith("```")
    switch = excerpts.code("functions/seeder/app.py", "_switch")
    assert 'os.replace(temporary, root / "current")' in switch
    with pytest.raises(KeyError, match="No function 'nope'"):
        excerpts.code("functions/seeder/app.py", "nope")


def test_signatures_are_read_from_the_file():
    from helpers import excerpts

    text = excerpts.signatures("functions/sagemaker/code/inference.py", ("model_fn", "output_fn"))
    assert text.splitlines()[0] == "- `model_fn(model_dir: str) -> dict`"
