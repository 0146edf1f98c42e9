"""A SageMaker container's output reaches its log a bounded piece at a time (issue 23, item 6).

See ``localaws/sagemaker/container.py``: a model that prints a line without end must never make the
server hold that line whole; it is logged in events of at most ``MAX_LINE_BYTES``, as Lambda's are.
"""

from __future__ import annotations

import subprocess
import sys
import types

from localaws.lambda_engine.logs import MAX_LINE_BYTES
from localaws.sagemaker.container import Container


def test_a_line_of_3_mb_without_end_is_logged_in_bounded_pieces():
    printer = "import sys\nsys.stdout.write('m' * (3 << 20))\nsys.stdout.flush()\n"
    process = subprocess.Popen([sys.executable, "-c", printer], stdout=subprocess.PIPE)
    written: list[str] = []
    fake = types.SimpleNamespace(process=process, _tail=[], log=types.SimpleNamespace(write=written.extend))
    Container._read_output(fake)
    assert "".join(written) == "m" * (3 << 20)
    assert max(len(piece) for piece in written) <= MAX_LINE_BYTES
    assert all(len(line) <= 1000 for line in fake._tail)
