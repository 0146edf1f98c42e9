"""The local Lambda data plane: invocations run for real in execution environments (child processes).

Modules: :mod:`layer` (WSGI routes), :mod:`engine` (which environment serves what, lifecycle,
Provisioned Concurrency), :mod:`environment` (one process), :mod:`runtime_api` (the Runtime API it
talks to), :mod:`bootstrap` (a built-in runtime client), :mod:`function_spec` (configuration from
moto), :mod:`mounts` (EFS folders), :mod:`task_root` (extracted code), :mod:`logs` (log lines and
CloudWatch Logs).
"""

from localaws.lambda_engine.engine import Engine, InvokeResult, get_engine

__all__ = ["Engine", "InvokeResult", "get_engine"]
