"""CloudFormation: stack operations run one at a time, so two clients deploying one stack never interleave.

Gap of stock moto 5.2.5 filled here: moto creates a stack's resources inside the CreateStack call,
on whichever server thread received it, with no lock. Two clients creating the same stack at once
both pass the "already exists" check, both create the resources (the second one's Lambda alias
then conflicts with the first's), and the loser's rollback deletes resources the winner's stack
still lists; the models of other services are not thread-safe either. AWS answers the second
CreateStack with ``AlreadyExistsException`` and never mixes two operations' resources
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html).

Here every stack-changing operation (create, update, delete, change sets) of the server holds one
lock. Reads (DescribeStacks, events, outputs) do not wait for it.
"""

from __future__ import annotations

import functools
import logging
import threading

from moto.cloudformation import models

log = logging.getLogger(__name__)

_lock = threading.RLock()
_OPERATIONS = (
    "create_stack",
    "update_stack",
    "delete_stack",
    "create_change_set",
    "execute_change_set",
    "delete_change_set",
)


def _serialised(original):
    @functools.wraps(original)
    def operation(self, *args, **kwargs):
        with _lock:
            return original(self, *args, **kwargs)

    return operation


def apply() -> None:
    for name in _OPERATIONS:
        setattr(models.CloudFormationBackend, name, _serialised(getattr(models.CloudFormationBackend, name)))
