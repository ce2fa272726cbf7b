"""`kubezt compile` of the bundled example intent, in both modes, matches the golden files in
tests/golden/compile/<case>/<mode>/ (refresh with `pytest --update-golden`), and those golden
manifests, loaded with the example's workloads, allow exactly what the intent grants.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import kubezt
from intentkit import EXAMPLE, workload_objects
from kubezt.analysis.verify import verify
from kubezt.cli.main import app
from kubezt.dialects.intent import load_intent
from kubezt.ir.intent import Mode

GOLDEN = Path(__file__).parent.parent / "golden" / "compile"
CASES = [
    ("shop", "sidecar", ()),
    ("shop", "ambient", ()),
    ("shop-spire-platform", "sidecar", ("--spire", "--platform")),
    ("shop-cluster-policy", "sidecar", ("--cluster-policy",)),
    ("shop-cluster-policy", "ambient", ("--cluster-policy",)),
]


@pytest.mark.parametrize(("case", "mode", "options"), CASES, ids=[f"{c}-{m}" for c, m, _ in CASES])
def test_compile_matches_golden(
    tmp_path: Path, update_golden: bool, case: str, mode: str, options: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["compile", str(EXAMPLE), "--mode", mode, "-o", str(out), *options]
    )
    assert result.exit_code == 0, result.output
    golden = GOLDEN / case / mode
    if update_golden:
        if golden.exists():
            shutil.rmtree(golden)
        shutil.copytree(out, golden)
    produced = sorted(p.name for p in out.iterdir())
    expected = sorted(p.name for p in golden.iterdir())
    assert produced == expected, "file set changed: run pytest --update-golden and review"
    for name in produced:
        assert (out / name).read_text("utf-8") == (golden / name).read_text("utf-8"), (
            f"{case}/{mode}/{name} differs from the golden file: run pytest --update-golden "
            "and review the diff"
        )


def test_golden_files_are_in_rollout_order() -> None:
    names = sorted(p.name for p in (GOLDEN / "shop" / "sidecar").iterdir())
    assert names[0] == "10-serviceaccounts.yaml"
    assert names[-1] == "90-default-deny.yaml"
    assert names.index("30-calico-allow.yaml") < names.index("90-default-deny.yaml")
    assert names.index("50-mesh-enrolment.yaml") < names.index("60-peer-authentication.yaml")
    assert names.index("70-authorization-allow.yaml") < names.index(
        "80-authorization-default-deny.yaml"
    )


@pytest.mark.parametrize("case", ["shop", "shop-cluster-policy"])
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_golden_manifests_allow_exactly_the_example_intent(
    tmp_path: Path, mode: Mode, case: str
) -> None:
    intent = load_intent(str(EXAMPLE))
    workloads = tmp_path / "workloads.yaml"
    workloads.write_text(yaml.safe_dump_all(workload_objects(intent, replicas=2)), "utf-8")
    loaded = kubezt.load([str(GOLDEN / case / mode.value), str(workloads)])
    result = verify(intent, loaded.model, mode)
    assert result.ok, "\n".join(str(d) for d in result.differences)
    assert result.checked > 50
