"""S3: the bucket properties the artifact bucket sets, and deletes that fail when they should.

Gaps of stock moto 5.2.5 filled here:

- ``AWS::S3::Bucket`` drops ``VersioningConfiguration``, ``PublicAccessBlockConfiguration`` and
  ``OwnershipControls`` (only encryption and tags are applied), so the bucket is neither versioned
  nor private as the template says.
- Deleting a stack whose bucket still holds objects silently keeps the bucket and reports success.
  AWS fails the delete with ``BucketNotEmpty`` (the stack ends in DELETE_FAILED), which is why the
  workshop empties every object version first.
"""

from __future__ import annotations

from moto.s3.exceptions import BucketNotEmpty
from moto.s3.models import FakeBucket, s3_backends
from moto.utilities.utils import get_partition


def _apply_properties(bucket_name: str, properties: dict, account_id: str, region_name: str) -> None:
    backend = s3_backends[account_id][get_partition(region_name)]
    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning:
        backend.put_bucket_versioning(bucket_name, versioning)
    block = properties.get("PublicAccessBlockConfiguration")
    if block:
        backend.put_public_access_block(bucket_name, {k: str(v).lower() for k, v in block.items()})
    rules = properties.get("OwnershipControls", {}).get("Rules", [])
    if rules:
        backend.put_bucket_ownership_controls(bucket_name, ownership=rules[0]["ObjectOwnership"])


def _wrap_create(original):
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        bucket = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _apply_properties(bucket.name, cloudformation_json.get("Properties", {}), account_id, region_name)
        return bucket

    return classmethod(create_from_cloudformation_json)


def _delete_from_cloudformation_json(
    cls, resource_name, cloudformation_json, account_id, region_name
) -> None:
    backend = s3_backends[account_id][get_partition(region_name)]
    if resource_name not in backend.buckets:
        return
    if backend.delete_bucket(resource_name) is None:
        raise BucketNotEmpty(resource_name)


def apply() -> None:
    FakeBucket.create_from_cloudformation_json = _wrap_create(FakeBucket.create_from_cloudformation_json)
    FakeBucket.delete_from_cloudformation_json = classmethod(_delete_from_cloudformation_json)
