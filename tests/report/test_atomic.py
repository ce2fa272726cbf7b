"""write_atomic: outputs are replaced all at once and never left half-written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kubezt.report.atomic import write_atomic


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_writes_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "reach.json"
    write_atomic(target, '{"a": 1}\n')
    assert target.read_bytes() == b'{"a": 1}\n'
    assert leftovers(tmp_path) == []


def test_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_replaces_an_existing_file_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o600)
    write_atomic(str(target), "new ünïcode\n")
    assert target.read_text(encoding="utf-8") == "new ünïcode\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_a_reader_of_the_old_file_never_sees_a_partial_write(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old complete content\n", encoding="utf-8")
    with target.open(encoding="utf-8") as reader:
        write_atomic(target, "new\n")
        assert reader.read() == "old complete content\n"
    assert target.read_text(encoding="utf-8") == "new\n"


def test_newlines_are_written_as_given(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_atomic(target, "a\nb\r\nc")
    assert target.read_bytes() == b"a\nb\r\nc"


def test_a_failure_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n", encoding="utf-8")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new\n")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert leftovers(tmp_path) == []


def test_an_unencodable_text_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "café", encoding="ascii")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "out.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_a_directory_in_the_way_is_an_error_and_is_kept(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError):
        write_atomic(tmp_path / "out", "x")
    assert (tmp_path / "out").is_dir()
    assert leftovers(tmp_path) == []
