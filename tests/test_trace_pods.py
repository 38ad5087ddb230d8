"""`dnsprobe trace` beyond one clean log: non-text input refused, logs of several containers attributed
per container, and the pod's files saying why names went to cgo.

The container logs wrap real traces (tests/data/trace/go127_dynamic_*.log, whose resolvers the golden
JSON next to them records) the way kubectl, the kubelet's CRI files, Docker's json-file driver and
docker compose write them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dnsprobe.analyse.trace import analyse_log, container_of_path
from dnsprobe.analyse.tracewhy import PodContext, explain, explain_name
from dnsprobe.cli import main

DATA = Path(__file__).parent / "data" / "trace"
CGO_LOG = (DATA / "go127_dynamic_all_cgo.log").read_text().splitlines()
GO_LOG = (DATA / "go127_dynamic_go.log").read_text().splitlines()
TRUTH = {
    "cgo": json.loads((DATA / "go127_dynamic_all_cgo.json").read_text())["resolver"],
    "go": json.loads((DATA / "go127_dynamic_go.json").read_text())["resolver"],
}


def interleave(a: list[str], b: list[str]) -> list[tuple[int, str]]:
    out = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append((0, a[i]))
        if i < len(b):
            out.append((1, b[i]))
    return out


def kubectl_prefix() -> str:
    names = ["pod/web-1/api", "pod/web-1/worker"]
    return "\n".join(f"[{names[k]}] {line}" for k, line in interleave(CGO_LOG, GO_LOG)) + "\n"


def tail_over_cri() -> str:
    paths = [
        "/var/log/pods/shop_web-1_0f3c/api/0.log",
        "/var/log/pods/shop_web-1_0f3c/worker/0.log",
    ]
    parts = []
    for path, log in zip(paths, (CGO_LOG, GO_LOG), strict=True):
        parts.append(f"==> {path} <==")
        parts += [f"2026-11-20T10:00:00.{i:09d}Z stderr F {line}" for i, line in enumerate(log)]
        parts.append("")
    return "\n".join(parts)


def tail_over_docker_json() -> str:
    ids = ["a" * 64, "b" * 64]
    parts = []
    for cid, log in zip(ids, (CGO_LOG, GO_LOG), strict=True):
        parts.append(f"==> /var/lib/docker/containers/{cid}/{cid}-json.log <==")
        for line in log:
            parts.append(json.dumps({"log": line + "\n", "stream": "stderr", "time": "2026-11-20T10:00:00Z"}))
    return "\n".join(parts) + "\n"


def compose_prefix() -> str:
    names = ["api-1    ", "worker-1 "]
    return "\n".join(f"{names[k]}| {line}" for k, line in interleave(CGO_LOG, GO_LOG)) + "\n"


@pytest.mark.parametrize(
    ("make", "keys"),
    [
        (kubectl_prefix, ["web-1/api", "web-1/worker"]),
        (tail_over_cri, ["web-1/api", "web-1/worker"]),
        (tail_over_docker_json, ["docker:aaaaaaaaaaaa", "docker:bbbbbbbbbbbb"]),
        (compose_prefix, ["api-1", "worker-1"]),
    ],
)
def test_several_containers_are_attributed(make: object, keys: list[str]) -> None:
    assert callable(make)
    report = analyse_log(make().encode())
    assert report.resolver == "mixed"  # the whole log: one container on cgo, one on Go's resolver
    assert list(report.containers) == keys
    assert report.containers[keys[0]].resolver == TRUTH["cgo"]
    assert report.containers[keys[1]].resolver == TRUTH["go"]
    # Every trace line is counted once in some container.
    assert sum(r.trace_lines for r in report.containers.values()) == report.trace_lines


def test_container_of_path() -> None:
    assert container_of_path("/var/log/containers/web-1_shop_api-" + "c" * 64 + ".log") == "web-1/api"
    assert container_of_path("/tmp/x.log") == "/tmp/x.log"


def test_non_text_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", sys.executable]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "an ELF binary, not a log" in err
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 64)
    assert main(["trace", str(blob)]) == 2
    assert "not a text log" in capsys.readouterr().err
    assert main(["trace", str(tmp_path / "missing.log")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_pod_files_say_why_cgo() -> None:
    context = PodContext(
        resolv_conf="search svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5 no-aaaa\n"
        "sortlist 10.0.0.0\n",
        nsswitch="passwd: files\nhosts: files [!UNAVAIL=return] resolve dns myhostname mdns4_minimal\n",
        env={"LOCALDOMAIN": "", "GODEBUG": "netdns=cgo+2"},
        hostname="web-1",
    )
    reasons = " | ".join(explain(context))
    for expected in (
        "GODEBUG=netdns=cgo+2",
        "LOCALDOMAIN is set",
        "option 'no-aaaa'",
        "keyword 'sortlist'",
        "files [!UNAVAIL=return]",
        "source 'resolve'",
    ):
        assert expected in reasons
    assert "ndots" not in reasons  # an option Go knows
    assert explain_name(context, "web-1") and explain_name(context, "printer.local")
    assert not explain_name(context, "api.example.test")
    # The Kubernetes defaults send nothing to cgo.
    plain = PodContext("nameserver 10.96.0.10\noptions ndots:5\n", "hosts: files dns\n", {}, None)
    assert explain(plain) == []


def test_cli_with_pod_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "app.log"
    log.write_text("\n".join(CGO_LOG) + "\n")
    nss = tmp_path / "nsswitch.conf"
    nss.write_text("hosts: files resolve dns\n")
    assert main(["trace", str(log), "--nsswitch", str(nss), "--env", "RES_OPTIONS=rotate", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["resolver"] == "cgo"
    assert any("resolve" in r for r in data["cgo_reasons"])
    assert any("RES_OPTIONS" in r for r in data["cgo_reasons"])
    assert main(["trace", str(log), "--env", "nonsense"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for mode, log, nsswitch in (
        ("cgo", CGO_LOG, "hosts: files mdns4_minimal [NOTFOUND=return] dns\n"),
        ("go", GO_LOG, "hosts: files dns\n"),
    ):
        pod = tmp_path / "pods" / mode
        pod.mkdir(parents=True)
        (pod / "probe.stderr").write_text("\n".join(log) + "\n")
        (pod / "resolv.conf").write_text(
            "nameserver 127.0.0.1\noptions ndots:5 inet6\n" if mode == "cgo" else ""
        )
        (pod / "nsswitch.conf").write_text(nsswitch)
        env = {"LOCALDOMAIN": "corp.test"} if mode == "cgo" else {}
        (pod / "pod.json").write_text(json.dumps({"probe": {"env": env}}))
    assert main(["trace", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["resolver"] == "mixed"
    assert data["containers"]["cgo"]["resolver"] == "cgo"
    assert any("inet6" in r for r in data["containers"]["cgo"]["cgo_reasons"])
    assert any("LOCALDOMAIN" in r for r in data["containers"]["cgo"]["cgo_reasons"])
    assert data["containers"]["go"]["cgo_reasons"] == []
    assert main(["trace", str(tmp_path / "pods" / "cgo")]) == 0
    assert "option 'inet6'" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["trace", str(empty)]) == 2
    assert "probe.stderr" in capsys.readouterr().err


def test_a_log_level_column_is_not_a_container() -> None:
    text = "\n".join(f"INFO  | {line}" for line in GO_LOG) + "\n"
    report = analyse_log(text.encode())
    assert report.containers == {}
    assert report.resolver == TRUTH["go"]
