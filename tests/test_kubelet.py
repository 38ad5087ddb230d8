"""`dnsprobe pod render`: a manifest's pod files as the kubelet writes them.

Golden cases live in tests/data/kube/: NAME.yaml (its comment says which kubelet function it shows),
NAME.args (extra command-line options, optional) and NAME.expected (the whole output). The functions
named are the kubelet's: pkg/kubelet/network/dns/dns.go (GetPodDNS, getPodDNSType,
generateSearchesForDNSClusterFirst, appendDNSConfig, mergeDNSOptions, formDNSNameserversFitsLimits,
formDNSSearchFitsLimits, CheckLimitsForResolvConf, parseResolvConf) and pkg/kubelet/kubelet_pods.go
(managedHostsFileContent, nodeHostsFileContent, hostsEntriesFromHostAliases,
GeneratePodHostNameAndDomain, makeEnvironmentVariables).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from dnsprobe.cli import main
from dnsprobe.errors import ManifestError
from dnsprobe.kube import kubedns, kubepods
from dnsprobe.kube.kubelet import KubeletConfig, render_pod
from dnsprobe.kube.manifest import read_manifest

DATA = Path(__file__).parent / "data" / "kube"
CASES = sorted(path.stem for path in DATA.glob("*.yaml"))


def render_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> tuple[int, str, str]:
    monkeypatch.chdir(DATA)  # the output names the files as given: relative, like a user's
    code = main(["pod", "render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_policy_and_limit_has_a_golden_case() -> None:
    """The cases the issue asks for: every dnsPolicy, dnsConfig merging, hostAliases, each limit with its
    warning, hostNetwork both ways."""
    expected = {path.stem for path in DATA.glob("*.expected")}
    assert set(CASES) == expected
    text = "".join((DATA / f"{case}.expected").read_text() for case in CASES)
    for policy in ("ClusterFirst,", "ClusterFirstWithHostNet,", "Default,", "None,"):
        assert f"dnsPolicy {policy}" in text
    for warning in (
        "Nameserver limits were exceeded",
        "Search Line limits were exceeded",
        "MissingClusterDNS",
    ):
        assert warning in text
    assert "# Entries added by HostAliases." in text
    assert "hostNetwork true" in text


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    args_file = DATA / f"{case}.args"
    extra = shlex.split(args_file.read_text()) if args_file.exists() else []
    code, out, err = render_cli(monkeypatch, capsys, [f"{case}.yaml", *extra])
    assert (code, err) == (0, "")
    assert out == (DATA / f"{case}.expected").read_text(encoding="utf-8")


def test_json_has_the_files_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = render_cli(monkeypatch, capsys, ["limits-nameservers.yaml", "--json"])
    data = json.loads(out)
    assert code == 0
    assert data["resolv_conf"] == (
        "search default.svc.cluster.local svc.cluster.local cluster.local node.example.internal\n"
        "nameserver 10.96.0.10\nnameserver 10.0.0.53\nnameserver 10.0.1.53\noptions ndots:5\n"
    )
    assert data["hosts"].startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert data["hosts"].endswith("10.244.0.5\tmany-ns\n")
    assert [w.split(":")[0] for w in data["warnings"]] == ["DNSConfigForming"]


def test_namespace_cluster_domain_and_cluster_dns_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """generateSearchesForDNSClusterFirst with --namespace and --cluster-domain; two --cluster-dns."""
    code, out, _ = render_cli(
        monkeypatch,
        capsys,
        ["clusterfirst.yaml", "--namespace", "payments", "--cluster-domain", "k8s.example",
         "--cluster-dns", "10.0.0.10,10.0.0.11", "--json"],
    )  # fmt: skip
    data = json.loads(out)
    assert code == 0
    assert data["resolv_conf"].splitlines() == [
        "search payments.svc.k8s.example svc.k8s.example k8s.example node.example.internal",
        "nameserver 10.0.0.10",
        "nameserver 10.0.0.11",
        "options ndots:5",
    ]


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("kind: Service\nmetadata: {name: api}\n", [], "no pod template: no Pod, Deployment"),
        ("kind: Deployment\nmetadata: {name: api}\nspec: {}\n", [], "Deployment/api has no pod template"),
        (
            "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: app}, {name: proxy}]\n",
            ["--container", "api"],
            "Pod/p has no container 'api'; its containers: app, proxy",
        ),
        ("kind: Pod\nspec: [\n", [], "not valid YAML at line 3"),
        ("- just\n- a list\n", [], "document 1 is a list, not a Kubernetes object"),
        (
            "kind: Pod\nmetadata: {name: p}\nspec:\n  dnsPolicy: None\n  containers: [{name: app}]\n",
            [],
            "dnsPolicy None needs dnsConfig.nameservers",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec:\n  dnsPolicy: Cluster\n  containers: [{name: app}]\n",
            [],
            "dnsPolicy 'Cluster' is not one of ClusterFirst",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec:\n  dnsConfig: {options: [{name: ndots, value: 2}]}\n"
            "  containers: [{name: app}]\n",
            [],
            "value 2 is not a string, so the API server rejects it",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec:\n  dnsConfig: {nameservers: [a, b, c, d]}\n"
            "  containers: [{name: app}]\n",
            [],
            "dnsConfig.nameservers has more than 3 addresses",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: app}]}\n",
            ["--cluster-dns", "x"],
            "not an IP",
        ),
    ],
)
def test_bad_manifest_is_one_line_and_exit_2(
    text: str,
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(text)
    code, out, err = render_cli(monkeypatch, capsys, [str(path), *args])
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err


def test_missing_manifest_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = render_cli(monkeypatch, capsys, ["nosuch.yaml"])
    assert code == 2
    assert err == "dnsprobe: error: nosuch.yaml: no such file (the Kubernetes manifest)\n"


def test_parse_resolv_conf_last_search_and_options_win() -> None:
    """parseResolvConf: nameservers accumulate, the last search/options line wins, trailing dots go."""
    text = (DATA / "node-resolv.conf").read_text()
    assert kubedns.parse_resolv_conf(text, "node") == (
        ["10.0.0.2", "10.0.0.3"],
        ["eu-west-1.compute.internal", "corp.example.test"],
        ["timeout:2", "attempts:3", "rotate"],
    )
    with pytest.raises(ManifestError, match="line 2: 'nameserver' without an address"):
        kubedns.parse_resolv_conf("nameserver 10.0.0.2\nnameserver\n", "node")


def test_merge_dns_options_replaces_by_name() -> None:
    """mergeDNSOptions: `name:value` split at the first colon; a pod option replaces one of its name;
    an option without a value loses the old value."""
    merged = kubedns.merge_dns_options(
        ["ndots:5", "timeout:2", "rotate"], [("timeout", "1"), ("ndots", None)]
    )
    assert merged == ["ndots", "timeout:1", "rotate"]


def test_search_line_limit_is_2048_characters_inclusive() -> None:
    """formDNSSearchFitsLimits: a line of exactly 2048 characters stays; one more cuts the last domain."""
    domain = "a" * 63 + "." + "b" * 63 + "." + "c" * 63  # 191 characters
    exact = [domain] * 10 + ["x" * (2048 - 10 * 192)]  # 10 * (191 + 1 space) + the rest = 2048
    assert len(" ".join(exact)) == 2048
    warnings: list[str] = []
    assert kubedns.form_dns_search_fits_limits(list(exact), warnings) == exact
    assert warnings == []
    longer = [*exact[:-1], exact[-1] + "y"]
    assert kubedns.form_dns_search_fits_limits(longer, warnings) == exact[:-1]
    assert len(warnings) == 1


def test_env_expansion() -> None:
    """makeEnvironmentVariables' $(VAR) expansion: known names replaced, unknown kept, $$ escapes."""
    known = {"A": "1"}.get
    assert kubepods.expand("x=$(A),y=$(B),z=$$(A),w=$x", known) == "x=1,y=$(B),z=$(A),w=$x"


def test_hostname_longer_than_63_is_truncated() -> None:
    """truncatePodHostnameIfNeeded: 63 characters, trailing '-' and '.' dropped, and a log line."""
    name = "a" * 62 + "-b" + "c" * 10
    template = read_manifest(
        f"kind: Pod\nmetadata: {{name: {name}}}\nspec: {{containers: [{{name: app}}]}}\n", "p.yaml"
    )
    rendered = render_pod(template, KubeletConfig())
    assert rendered.hostname == "a" * 62
    assert rendered.hosts.endswith(f"10.244.0.5\t{'a' * 62}\n")
    assert any("truncated" in warning for warning in rendered.warnings)


def test_cpu_limit_sets_gomaxprocs_unless_the_manifest_does() -> None:
    """Go 1.25+: GOMAXPROCS from the CPU limit, rounded up, at least 2; an explicit GOMAXPROCS wins."""

    def env(container: str) -> dict[str, str]:
        text = f"kind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{container}]}}\n"
        return render_pod(read_manifest(text, "p.yaml"), KubeletConfig()).env

    assert env("{name: a, resources: {limits: {cpu: 250m}}}") == {"GOMAXPROCS": "2"}
    assert env("{name: a, resources: {limits: {cpu: '3.2'}}}") == {"GOMAXPROCS": "4"}
    assert env("{name: a, resources: {limits: {cpu: 4}}, env: [{name: GOMAXPROCS, value: '1'}]}") == {
        "GOMAXPROCS": "1"
    }
    assert env("{name: a, env: [{name: PATH, value: /bin}, {name: RES_OPTIONS, value: 'ndots:1'}]}") == {
        "RES_OPTIONS": "ndots:1"
    }


# --- [pod] manifest in a scenario -------------------------------------------------------------------

ZONE = """
$TTL 30
cluster.local.                SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30
*.api.shop.svc.cluster.local. A   10.96.1.20
example.test.                 SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 30
*.example.test.               A   192.0.2.10
"""
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: sidecar
          image: envoy
        - name: api
          image: myorg/api
          env:
            - {name: GODEBUG, value: "netedns0=1"}
            - {name: RES_OPTIONS, value: "attempts:3"}
"""


def write_scenario(tmp_path: Path, pod: str, extra: str = "", deploy: str = DEPLOY) -> Path:
    (tmp_path / "k8s").mkdir(exist_ok=True)
    (tmp_path / "k8s" / "deploy.yaml").write_text(deploy)
    path = tmp_path / "scenario.toml"
    path.write_text(
        f'name = "manifest"\nmodes = ["go", "cgo"]\n{extra}\n[pod]\n{pod}\n'
        "[load]\nusers = 1\nduration = 2\nquick_duration = 2\nbatch = 50\nconcurrency = 4\n"
        '[[load.workloads]]\nlabel = "service"\nquery = "{rand}.api"\n'
        '[[load.workloads]]\nlabel = "external"\nquery = "{rand}.example.test"\n'
        f'[nameserver]\nzone = """{ZONE}"""\n'
    )
    return path


def test_scenario_manifest_is_relative_to_the_scenario_and_sets_the_pod(tmp_path: Path) -> None:
    from dnsprobe.sandbox import render_pod_files
    from dnsprobe.scenario import load_scenario

    scenario = load_scenario(
        write_scenario(tmp_path, 'manifest = "k8s/deploy.yaml"\ncontainer = "api"\nenv = {GODEBUG = "x=1"}')
    )
    pod = scenario.pod
    assert pod.manifest == str(tmp_path / "k8s" / "deploy.yaml")
    # what the analysis counts search-list queries against: the kubelet's list, not the default one
    assert pod.search == [
        "shop.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
        "node.example.internal",
    ]
    assert pod.ndots == 5
    assert pod.env == {"GODEBUG": "x=1", "RES_OPTIONS": "attempts:3"}  # [pod] env overrides the manifest
    files = render_pod_files(pod, hostname="ignored", nameservers=["127.0.0.1"])
    assert files.resolv_conf == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local node.example.internal\n"
        "nameserver 10.96.0.10\noptions ndots:5\n"
    )
    assert files.nameservers == ("10.96.0.10",)
    assert files.hosts.endswith("10.244.0.5\tweb-6d8f9c7b5d-x7k2p\n")
    assert files.as_dict()["manifest"]["container"] == "api"


@pytest.mark.parametrize(
    ("pod", "extra", "message"),
    [
        ('manifest = "k8s/deploy.yaml"\nndots = 2', "", "pod: ndots comes from the manifest"),
        ('container = "api"', "", "pod: container only applies with manifest"),
        ('manifest = "k8s/nosuch.yaml"', "", "pod.manifest: " + "{tmp}/k8s/nosuch.yaml: no such file"),
        (
            'manifest = "k8s/deploy.yaml"\ncontainer = "web"',
            "",
            "has no container 'web'; its containers: sidecar, api",
        ),
        ('manifest = "k8s/deploy.yaml"', 'backend = "docker"', "runs on the local backend only"),
        ('manifest = "k8s/deploy.yaml"\ncluster_dns = ["10.96.0.x"]', "", "'10.96.0.x' is not an IP address"),
    ],
)
def test_scenario_manifest_errors(tmp_path: Path, pod: str, extra: str, message: str) -> None:
    from dnsprobe.errors import ScenarioError
    from dnsprobe.scenario import load_scenario

    path = write_scenario(tmp_path, pod, extra)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert message.format(tmp=tmp_path) in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_more_servers_than_the_manifest_has_nameservers(tmp_path: Path) -> None:
    from dnsprobe.errors import ScenarioError
    from dnsprobe.scenario import load_scenario

    path = write_scenario(tmp_path, 'manifest = "k8s/deploy.yaml"')
    path.write_text(path.read_text() + "[[nameserver.servers]]\n[[nameserver.servers]]\n")
    with pytest.raises(ScenarioError, match=r"nameserver.servers: 2 servers, but the manifest's pod has 1"):
        load_scenario(path)


def test_pod_address_is_refused_outside_a_pod_namespace() -> None:
    """The host's network namespace has more than lo: the cluster DNS address is never added there."""
    from dnsprobe.errors import NameserverError
    from dnsprobe.nameserver.podnet import add_pod_address, namespace_interfaces

    if namespace_interfaces() == ["lo"]:
        pytest.skip("this test runs in a namespace with only lo")
    with pytest.raises(NameserverError, match="not only lo, so it is not a pod's own"):
        add_pod_address("10.96.0.10")


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "modes"), [("auto", ["go", "cgo"]), ("python", ["go"])])
def test_manifest_pod_queries_arrive_at_the_cluster_dns_inside_the_pod(
    tmp_path: Path, engine: str, modes: list[str]
) -> None:
    """A quickstart-like run with a manifest: the probes read the kubelet's resolv.conf byte for byte, and
    the nameserver on the pod's own 10.96.0.10 sees every query (the source address is 10.96.0.10 too:
    the kernel picks the address on lo that the destination is)."""
    import subprocess
    import sys

    from dnsprobe.nameserver.querylog import read_querylog

    path = write_scenario(tmp_path, 'manifest = "k8s/deploy.yaml"\ncontainer = "api"')
    text = path.read_text().replace('modes = ["go", "cgo"]', f"modes = {json.dumps(modes)}")
    path.write_text(text.replace("[nameserver]\n", f'[nameserver]\nengine = "{engine}"\n'))
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "dnsprobe", "run", str(path), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = out.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["nameserver"]["endpoints"] == ["10.96.0.10:53"]
    assert summary["pod"]["manifest"]["workload"] == "Deployment/web"
    expected = (
        "search shop.svc.cluster.local svc.cluster.local cluster.local node.example.internal\n"
        "nameserver 10.96.0.10\noptions ndots:5\n"
    )
    for name in modes:
        entry = next(m for m in summary["modes"] if m["mode"] == name)
        assert entry["status"] == "ran", entry["reason"]
        assert entry["ok"] > 0 and entry["ok"] == entry["lookups"]
        assert (run_dir / "pods" / name / "resolv.conf").read_text() == expected
        log_text = (run_dir / "pods" / name / "queries.tsv").read_text()
        entries = list(read_querylog(log_text.splitlines()))
        assert len(entries) >= entry["lookups"]
        assert {e.client for e in entries} == {"10.96.0.10"}
        # the kubelet's search list is walked: a service name is completed in the pod's namespace
        assert any(e.qname.endswith(".api.shop.svc.cluster.local.") for e in entries)


def test_the_example_scenario_loads() -> None:
    from dnsprobe.scenario import load_scenario

    root = Path(__file__).resolve().parent.parent
    pod = load_scenario(root / "scenarios" / "kubernetes.toml").pod
    assert pod.manifest == str(root / "scenarios" / "kubernetes" / "deploy.yaml")
    assert (pod.ndots, pod.search[0], pod.env) == (2, "shop.svc.cluster.local", {"GOMAXPROCS": "2"})


def test_kubectl_list_and_the_default_container_annotation() -> None:
    """`kubectl get -o yaml` gives a List; kubectl's default-container annotation picks the container."""
    text = """\
apiVersion: v1
kind: List
items:
  - kind: ConfigMap
    metadata: {name: settings}
  - kind: Deployment
    metadata: {name: api}
    spec:
      template:
        metadata:
          annotations: {kubectl.kubernetes.io/default-container: app}
        spec:
          containers: [{name: proxy}, {name: app}]
"""
    template = read_manifest(text, "list.yaml")
    assert (template.title, template.container_name) == ("Deployment/api", "app")
    assert any("kubectl.kubernetes.io/default-container" in note for note in template.notes)
