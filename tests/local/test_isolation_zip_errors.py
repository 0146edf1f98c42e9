"""Issue 23, item 9's zips, sent through boto3: what Lambda cannot unzip gets Lambda's modelled error.

A zip holding a file ``a`` and a file ``a/b``, a member named with 300 characters, a member whose CRC-32
lies, and a layer of each kind: CreateFunction, UpdateFunctionCode and PublishLayerVersion answer
``InvalidParameterValueException`` "Could not unzip uploaded file. Please check your file, then try to
upload again." (as Lambda does), where they were accepted and then made Invoke answer an HTML 500; and
no code folder is ever left behind, whole or in part.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import lambda_zip
from tests.local.test_lambda_engine import create_function, invoke, unique

MESSAGE = "Could not unzip uploaded file. Please check your file, then try to upload again."
HANDLER = "def handler(event, context):\n    return 'ran'\n"


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _lying_crc() -> bytes:
    """A stored member whose data no longer matches the CRC-32 both headers give for it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", HANDLER)
        archive.writestr("data.txt", "the real content\n")
    data = buffer.getvalue()
    return data.replace(b"the real content", b"the fake content")


BAD_ZIPS = {
    "a-file-and-a-folder-a": _zip({"app.py": HANDLER, "a": "file", "a/b": "under the file"}),
    "a-300-character-name": _zip({"app.py": HANDLER, "x" * 300 + ".py": "long"}),
    "a-lying-crc": _lying_crc(),
}


def _refused(call) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidParameterValueException", error
    assert error["Error"]["Message"] == MESSAGE
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def _no_code_folder(handle, data: bytes) -> None:
    code = Path(handle.state_dir).resolve() / "lambda" / "code"
    assert not (code / hashlib.sha256(data).hexdigest()).exists()


@pytest.mark.parametrize("kind", sorted(BAD_ZIPS))
def test_create_function_refuses_a_zip_lambda_cannot_unzip(local_aws, kind):
    data = BAD_ZIPS[kind]
    lam = local_aws.client("lambda")
    name = unique("unzip")
    _refused(
        lambda: lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=local_aws.lambda_role(),
            Handler="app.handler",
            Code={"ZipFile": data},
        )  # fmt: skip
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)
    _no_code_folder(local_aws, data)


@pytest.mark.parametrize("kind", sorted(BAD_ZIPS))
def test_update_function_code_refuses_it_and_keeps_the_running_code(local_aws, kind):
    data = BAD_ZIPS[kind]
    lam = local_aws.client("lambda")
    name = create_function(local_aws, HANDLER)
    _refused(lambda: lam.update_function_code(FunctionName=name, ZipFile=data))
    assert invoke(local_aws, name)[1] == "ran"
    _no_code_folder(local_aws, data)


@pytest.mark.parametrize("kind", sorted(BAD_ZIPS))
def test_publish_layer_version_refuses_it_inline_and_from_s3(local_aws, kind):
    data = BAD_ZIPS[kind]
    lam, s3 = local_aws.client("lambda"), local_aws.client("s3")
    _refused(lambda: lam.publish_layer_version(LayerName=unique("layer"), Content={"ZipFile": data}))
    bucket = unique("layers")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=data)
    _refused(
        lambda: lam.publish_layer_version(
            LayerName=unique("layer"), Content={"S3Bucket": bucket, "S3Key": "layer.zip"}
        )
    )


def test_a_good_zip_and_a_good_layer_are_still_accepted(local_aws):
    lam = local_aws.client("lambda")
    layer = lam.publish_layer_version(
        LayerName=unique("layer"), Content={"ZipFile": lambda_zip({"python/helper.py": "VALUE = 'layer'\n"})}
    )["LayerVersionArn"]
    code = "import helper\n\ndef handler(event, context):\n    return helper.VALUE\n"
    name = create_function(
        local_aws, {"app.py": code, "a/b/c.txt": "deep", "a/d.txt": "shallow"}, Layers=[layer]
    )
    assert invoke(local_aws, name)[1] == "layer"
