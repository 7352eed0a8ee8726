"""The `cxr` command as a user runs it (a real subprocess for the must-show commands)."""

import json
import subprocess
import sys

from cxr_course import cli

from helpers import make_dataset


def run_cxr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxr_course.cli", *args], capture_output=True, text=True, timeout=300)


def test_verify_224_reports_all_six_counts_official(resized_224):
    result = run_cxr("verify", str(resized_224))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok") == 6
    assert "Counts: all official." in result.stdout


def test_verify_originals_with_manifest(originals, tmp_path):
    out = tmp_path / "verify.json"
    result = run_cxr("verify", str(originals), "--manifest", "--json", str(out))
    assert result.returncode == 1  # a subset is not the official dataset
    assert "207 short" in result.stdout and "Verdict: NOT the complete official dataset." in result.stdout
    report = json.loads(out.read_text())
    assert report["altered"] == [] and report["extra"] == [] and len(report["missing"]) == 5440
    assert {(c["split"], c["label"]): c["difference"] for c in report["counts"]}[("val", "PNEUMONIA")] == -4


def test_index_command_on_originals(originals, tmp_path):
    out = tmp_path / "index.csv"
    result = run_cxr("index", str(originals), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "416 images" in result.stdout and "modes: L 392, RGB 24" in result.stdout
    assert "problems: 0" in result.stdout
    assert len(out.read_text().splitlines()) == 417


def test_audit_of_official_names(tmp_path, capsys):
    out = tmp_path / "audit.json"
    assert cli.main(["audit", "--json", str(out), "--max-rows", "5"]) == 0
    text = capsys.readouterr().out
    assert "names without a patient id: 0" in text
    assert "in more than one split: 170" in text
    assert "62 files in 30 groups (0 groups span two splits, 1 span two patient ids)" in text
    result = json.loads(out.read_text())
    assert result["files"] == 5856 and result["unparsed"] == [] and len(result["shared_patients"]) == 170


def test_bad_path_exits_2_with_a_message(tmp_path, capsys):
    assert cli.main(["verify", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_wrong_layout_exits_2(tmp_path, capsys):
    make_dataset(tmp_path, {"NORMAL/IM-0001-0001.jpeg": None})
    assert cli.main(["index", str(tmp_path)]) == 2
    assert "no split folders" in capsys.readouterr().err
