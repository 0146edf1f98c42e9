"""CloudFormation: per-resource events, failures that roll back, and "no updates" answered as on AWS.

Gaps of stock moto 5.2.5 filled here:

- Stacks are created synchronously with only two stack-level events: there are no per-resource
  events, so a deploy has nothing to show while it runs. We add ``CREATE_IN_PROGRESS`` /
  ``CREATE_COMPLETE`` (and ``DELETE_...``) events for every resource, after the stack's own
  ``CREATE_IN_PROGRESS`` as on AWS (moto creates resources before it records that one).
- A resource that fails to create fails the ``CreateStack`` API call itself (often HTTP 500) and
  leaves the stack ``CREATE_IN_PROGRESS`` for ever. AWS accepts the call, records ``CREATE_FAILED``
  with the reason, rolls back and ends in ``ROLLBACK_COMPLETE``. We do the same (the rollback deletes
  what was created). Likewise a failed update ends in ``UPDATE_ROLLBACK_COMPLETE``.
- A failed delete makes the stack vanish from ``list_stacks`` while its resources stay behind. AWS
  keeps the stack in ``DELETE_FAILED`` with the reason, so the user can see and retry. We do the same.
- An ``UpdateStack`` with the same template and no parameters is accepted and "updates" the stack.
  AWS answers ``ValidationError: No updates are to be performed.`` We do the same.
"""

from __future__ import annotations

import logging
import threading

from moto.cloudformation import models, parsing, responses
from moto.cloudformation.exceptions import ValidationError

log = logging.getLogger(__name__)
_active = threading.local()  # the stack whose resources are being created/deleted on this thread


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:1000]


def _resource_event(
    stack, logical_id: str, resource_type: str, status: str, physical_id: str = "", reason=None
):
    if status.startswith("CREATE") and not any(
        e.resource_type == models.Stack.cloudformation_type() for e in stack.events
    ):
        # moto creates resources while it evaluates exports, before it records the stack's own event.
        stack._add_stack_event("CREATE_IN_PROGRESS", resource_status_reason="User Initiated")
    event = models.Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id or "",
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    stack.events.append(event)


def _stack_of(resources_map) -> object | None:
    stack = getattr(_active, "stack", None)
    if stack is not None:
        return stack
    backend = models.cloudformation_backends[resources_map._account_id][resources_map._region_name]
    return backend.stacks.get(resources_map.stack_id)


def _physical_id(resource) -> str:
    try:
        return str(resource.physical_resource_id)
    except Exception:  # noqa: BLE001 - some moto models raise for ids they do not have
        return ""


def _wrap_create_resource(original):
    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):
        stack = _stack_of(resources_map)
        rtype = resource_json.get("Type", "")
        if stack is not None:
            _resource_event(stack, logical_id, rtype, "CREATE_IN_PROGRESS")
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            if stack is not None:
                _resource_event(stack, logical_id, rtype, "CREATE_FAILED", reason=_reason(exc))
            raise
        if stack is not None:
            status = "CREATE_COMPLETE" if resource is not None else "CREATE_SKIPPED"
            reason = (
                None if resource is not None else "condition is false or the type is not supported locally"
            )
            _resource_event(stack, logical_id, rtype, status, _physical_id(resource), reason)
        return resource

    return parse_and_create_resource


def _wrap_delete_resource(original):
    """Record a resource's delete events once it is gone.

    moto deletes in passes and retries what fails on a dependency; a failure here is usually retried
    and succeeds in a later pass, so only the final outcome is worth an event (a final failure shows
    on the stack's DELETE_FAILED event with its reason).
    """

    def _delete_resource(self, parsed_resource, resource_json):
        original(self, parsed_resource, resource_json)
        stack = _stack_of(self)
        if stack is not None:
            logical_id = getattr(parsed_resource, "logical_resource_id", "")
            rtype = resource_json.get("Type", "")
            for status in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
                _resource_event(stack, logical_id, rtype, status, _physical_id(parsed_resource))

    return _delete_resource


def _wrap_add_stack_event(original):
    def _add_stack_event(self, resource_status, resource_status_reason=None, resource_properties=None):
        already = any(
            e.resource_type == models.Stack.cloudformation_type()
            and e.resource_status == "CREATE_IN_PROGRESS"
            for e in self.events
        )
        if resource_status == "CREATE_IN_PROGRESS" and already:
            return  # recorded ahead of the first resource event, in its place
        original(self, resource_status, resource_status_reason, resource_properties)

    return _add_stack_event


def _rollback(stack) -> None:
    """Delete what a failed create made, as CloudFormation's rollback does."""
    stack.status = "ROLLBACK_IN_PROGRESS"
    stack._add_stack_event(
        "ROLLBACK_IN_PROGRESS", resource_status_reason="The following resource(s) failed to create"
    )
    _active.stack = stack
    try:
        stack.resource_map.delete()
    except Exception as exc:  # noqa: BLE001 - a rollback that fails is reported, not raised
        stack.status = "ROLLBACK_FAILED"
        stack._add_stack_event("ROLLBACK_FAILED", resource_status_reason=_reason(exc))
        return
    finally:
        _active.stack = None
    stack.status = "ROLLBACK_COMPLETE"
    stack._add_stack_event("ROLLBACK_COMPLETE")


def _wrap_create_stack(original):
    def create_stack(self, name, template, parameters, *args, **kwargs):
        known = set(self.stacks)
        try:
            return original(self, name, template, parameters, *args, **kwargs)
        except Exception as exc:
            new = [s for sid, s in self.stacks.items() if sid not in known]
            if not new:
                raise  # rejected before a stack existed (validation): the API call fails, as on AWS
            stack = new[0]
            log.warning("stack %s failed to create: %s", name, _reason(exc))
            for export in list(self.exports.values()):
                if export.exporting_stack_id == stack.stack_id:
                    self.exports.pop(export.name, None)
            stack.output_map = parsing.OutputMap(stack.resource_map, {"Resources": {}}, stack.stack_id)
            _rollback(stack)
            return stack

    return create_stack


def _wrap_update(original):
    def update(self, template, *args, **kwargs):
        _active.stack = self
        try:
            return original(self, template, *args, **kwargs)
        except Exception as exc:
            log.warning("stack %s failed to update: %s", self.name, _reason(exc))
            self._add_stack_event("UPDATE_FAILED", resource_status_reason=_reason(exc))
            self.status = "UPDATE_ROLLBACK_COMPLETE"
            self._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        finally:
            _active.stack = None

    return update


def _wrap_delete_stack(original):
    def delete_stack(self, name_or_stack_id):
        stack = self.stacks.get(name_or_stack_id) or next(
            (s for s in self.stacks.values() if s.name == name_or_stack_id), None
        )
        if stack is None:
            return original(self, name_or_stack_id)
        _active.stack = stack
        try:
            return original(self, name_or_stack_id)
        except Exception as exc:
            log.warning("stack %s failed to delete: %s", stack.name, _reason(exc))
            self.deleted_stacks.pop(stack.stack_id, None)
            self.stacks[stack.stack_id] = stack
            stack.status = "DELETE_FAILED"
            stack._add_stack_event("DELETE_FAILED", resource_status_reason=_reason(exc))
        finally:
            _active.stack = None

    return delete_stack


def _validate_different_update(self, incoming_params, stack_body, old_stack) -> None:
    """Refuse an update that changes nothing, with or without parameters (stock: only with)."""
    if not stack_body or old_stack.template != stack_body:
        return
    new_values = dict(old_stack.stack_parameters)
    for key, value in self._get_param_values(incoming_params or [], old_stack.stack_parameters).items():
        slot = old_stack.template_dict.get("Parameters", {}).get(key, {})
        if slot.get("Type", "String") == "CommaDelimitedList" or slot.get("Type", "").startswith("List"):
            value = value.split(",")
        elif slot.get("Type") == "Number":
            value = (
                type(new_values.get(key, 0))(value) if isinstance(new_values.get(key), int | float) else value
            )
        new_values[key] = value
    if {k: str(v) for k, v in new_values.items()} == {
        k: str(v) for k, v in old_stack.stack_parameters.items()
    }:
        raise ValidationError(old_stack.name, message="No updates are to be performed.")


def apply() -> None:
    parsing.parse_and_create_resource = _wrap_create_resource(parsing.parse_and_create_resource)
    parsing.ResourceMap._delete_resource = _wrap_delete_resource(parsing.ResourceMap._delete_resource)
    models.CloudFormationBackend.create_stack = _wrap_create_stack(models.CloudFormationBackend.create_stack)
    models.CloudFormationBackend.delete_stack = _wrap_delete_stack(models.CloudFormationBackend.delete_stack)
    models.Stack.update = _wrap_update(models.Stack.update)
    models.Stack._add_stack_event = _wrap_add_stack_event(models.Stack._add_stack_event)
    responses.CloudFormationResponse._validate_different_update = _validate_different_update
