"""The inference function deployed by function.yaml on the local backend, with a model on its EFS mount."""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import functions, invoke, model, samples, stacks
from tests.conftest import workshop_pointed_at
from tests.efs_framework import install_framework

IMAGE = samples.read()
PAYLOAD = {"image": base64.b64encode(IMAGE).decode()}


@pytest.fixture(scope="module")
def deployed(local_aws):
    with workshop_pointed_at(local_aws, "inftest") as cfg:
        yield from _deploy(cfg, local_aws)


def _deploy(cfg, local_aws):
    storage = stacks.deploy(cfg.name("storage"), "storage", echo=None)
    # The model where the seeder would put it: the access point's folder, as the functions see it.
    efs = local_aws.state_dir / "efs" / storage["FileSystemId"] / "ml" / "model"
    model.export(efs / "versions" / "v1")
    os.symlink("versions/v1", efs / "current")
    install_framework(efs.parent)  # torch's CPU build and Pillow, as 02 seeds them: the sandbox has neither
    code = functions.build_zip("inference")
    outputs = stacks.deploy(
        cfg.name("function"),
        "function",
        {
            "StorageStackName": cfg.name("storage"),
            "FunctionName": cfg.name("inference"),
            "CodeBucket": storage["ArtifactBucketName"],
            "CodeKey": functions.upload_zip(code, storage["ArtifactBucketName"]),
            "MemorySize": 2048,
            "Timeout": 30,
        },
        echo=None,
    )
    functions.wait_provisioned_ready(outputs["FunctionName"], "provisioned", timeout=120, progress=False)
    yield {"outputs": outputs, "model_dir": efs / "current"}
    for suffix in ("function", "storage"):
        stacks.delete(cfg.name(suffix), echo=None)


def test_on_demand_is_cold_then_warm_and_provisioned_has_no_init(deployed):
    name = deployed["outputs"]["FunctionName"]
    cold = invoke.invoke(name, PAYLOAD, "on-demand").raise_for_error()
    warm = invoke.invoke(name, PAYLOAD, "on-demand").raise_for_error()
    provisioned = invoke.invoke(name, PAYLOAD, "provisioned").raise_for_error()
    assert cold.report.init_duration_ms > 0 and cold.payload["init_type"] == "on-demand"
    assert warm.report.init_duration_ms is None
    assert (
        provisioned.report.init_duration_ms is None
        and provisioned.payload["init_type"] == "provisioned-concurrency"
    )
    assert cold.payload["model"]["weights_source"] == model.PACKAGE_SOURCE


def test_lambdas_prediction_equals_an_in_process_one_with_the_same_weights(deployed):
    network = model.network()
    net = network.EfficientNetLite0().eval()
    net.load_state_dict(torch.load(deployed["model_dir"] / model.WEIGHTS_FILE, weights_only=True))
    classes = json.loads((deployed["model_dir"] / "imagenet_classes.json").read_text())
    with torch.no_grad():
        probabilities = torch.softmax(net(network.preprocess(Image.open(io.BytesIO(IMAGE))))[0], dim=0)
    values, indices = probabilities.topk(5)
    expected = [
        {"label": classes[i], "probability": round(v, 6)}
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]
    result = invoke.invoke(deployed["outputs"]["FunctionName"], PAYLOAD, "provisioned").raise_for_error()
    assert result.payload["predictions"] == expected


@pytest.mark.parametrize(("photo", "expected"), samples.EXPECTED.items())
def test_the_served_predictions_name_what_a_person_sees_in_photos_shipped_in_packages(
    deployed, photo, expected
):
    """Real weights, offline: the function on the local Lambda, reading them from EFS, names the Summer
    Palace a palace, the flower a daisy and puts Grace Hopper's uniform in its top 3."""
    label, rank = expected
    payload = {"image": base64.b64encode(samples.read(photo)).decode(), "top_k": rank}
    result = invoke.invoke(deployed["outputs"]["FunctionName"], payload, "provisioned").raise_for_error()
    assert label in [p["label"] for p in result.payload["predictions"]]


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({}, "InvalidRequest"),
        ({"image": "@@@"}, "InvalidBase64"),
        ({"image": base64.b64encode(b"hello").decode()}, "NotAnImage"),
        ({**PAYLOAD, "top_k": 99}, "InvalidTopK"),
        ({"url": "file:///etc/hostname"}, "InvalidUrl"),
        ({"url": "http://127.0.0.1:9/nothing.jpg"}, "UrlNotAllowed"),  # loopback: the Runtime API is there
        ("just a string", "InvalidRequest"),
    ],
)
def test_bad_input_through_lambda_is_a_4xx_and_the_environment_keeps_serving(deployed, event, kind):
    name = deployed["outputs"]["FunctionName"]
    bad = invoke.invoke(name, event, "on-demand")
    assert bad.ok and bad.payload["error"]["type"] == kind and 400 <= bad.payload["statusCode"] < 500
    assert invoke.invoke(name, PAYLOAD, "on-demand").raise_for_error().report.init_duration_ms is None


def _runtime_apis(function: str, initialization: str) -> set[str]:
    """AWS_LAMBDA_RUNTIME_API of the function's live environments of one initialisation type."""
    wanted = {
        f"AWS_LAMBDA_FUNCTION_NAME={function}".encode(),
        f"AWS_LAMBDA_INITIALIZATION_TYPE={initialization}".encode(),
    }
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            variables = (entry / "environ").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if wanted <= set(variables):
            found |= {
                v.split(b"=", 1)[1].decode() for v in variables if v.startswith(b"AWS_LAMBDA_RUNTIME_API=")
            }
    return found


def test_a_url_naming_the_environments_own_runtime_api_is_refused_and_the_next_request_is_served(deployed):
    """The attack of issue 12: the download would become a second /next waiter in its own environment."""
    name = deployed["outputs"]["FunctionName"]
    assert invoke.invoke(name, PAYLOAD, "provisioned").raise_for_error()
    [runtime_api] = _runtime_apis(name, "provisioned-concurrency")  # the alias's one environment
    attack = invoke.invoke(
        name, {"url": f"http://{runtime_api}/2018-06-01/runtime/invocation/next"}, "provisioned"
    )
    assert (  # refused before connecting: a download that connected would end otherwise
        attack.ok
        and attack.payload["statusCode"] == 403
        and attack.payload["error"]["type"] == "UrlNotAllowed"
    )
    # The next invocation was not swallowed: it is answered, not ended by the function's timeout (a
    # wall-clock bound here failed on a loaded machine without telling anything more).
    assert invoke.invoke(name, PAYLOAD, "provisioned").raise_for_error().payload["predictions"]


def post(url: str, body: bytes, content_type: str):
    request = urllib.request.Request(url, data=body, headers={"content-type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_http_api_accepts_json_and_raw_image_bodies(deployed):
    url = deployed["outputs"]["HttpApiUrl"]
    status, by_json = post(url, json.dumps({**PAYLOAD, "top_k": 3}).encode(), "application/json")
    assert status == 200 and len(by_json["predictions"]) == 3
    status, by_bytes = post(url + "?top_k=3", IMAGE, "image/jpeg")
    assert status == 200 and by_bytes["predictions"] == by_json["predictions"]


def test_the_http_api_answers_bad_input_with_its_status_then_serves_again(deployed):
    url = deployed["outputs"]["HttpApiUrl"]
    status, body = post(url, b"{broken", "application/json")
    assert status == 400 and body["error"]["type"] == "InvalidJson"
    status, body = post(
        url, b'{"image": ' * 3000 + b"1" + b"}" * 3000, "application/json"
    )  # too deep to parse
    assert status == 400 and body["error"]["type"] == "InvalidJson"
    status, body = post(url, b"not an image", "image/png")
    assert status == 400 and body["error"]["type"] == "NotAnImage"
    assert post(url, IMAGE, "image/jpeg")[0] == 200


def test_a_missing_model_fails_init_naming_the_notebook(deployed, local_aws):
    lam = local_aws.client("lambda")
    name = deployed["outputs"]["FunctionName"]
    config = lam.get_function_configuration(FunctionName=name)
    variables = {**config["Environment"]["Variables"], "MODEL_DIR": "/mnt/ml/model/missing"}
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    try:
        failed = invoke.invoke(name, PAYLOAD)
        assert not failed.ok
        assert (
            failed.payload["errorType"] == "ModelMissing"
            and "02_seed_model.ipynb" in failed.payload["errorMessage"]
        )
    finally:
        lam.update_function_configuration(FunctionName=name, Environment=config["Environment"])
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    assert invoke.invoke(name, PAYLOAD).raise_for_error()
