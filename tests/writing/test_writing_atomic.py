"""atomic_write: the final path holds the old file or the whole new one, never a part; no temporary left."""

from __future__ import annotations

import os
import stat

import pytest

from app.errors import OutputError
from app.writing.atomic import atomic_write


def test_publishes_complete_file_and_creates_parent_folders(tmp_path):
    final = tmp_path / "a" / "b" / "out.bin"
    with atomic_write(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.endswith(final.name) and tmp != final
        assert not final.exists()
        tmp.write_bytes(b"complete")
    assert final.read_bytes() == b"complete"
    assert sorted(p.name for p in final.parent.iterdir()) == ["out.bin"]


def test_writer_exception_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    final = tmp_path / "out.bin"
    with pytest.raises(RuntimeError, match="writer crashed"):
        with atomic_write(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert list(tmp_path.iterdir()) == []

    final.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(final) as tmp:
            tmp.write_bytes(b"new but incomplete")
            raise RuntimeError("writer crashed")
    assert final.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_os_errors_become_output_errors_naming_the_path(tmp_path):
    final = tmp_path / "out.bin"
    with pytest.raises(OutputError) as info:
        with atomic_write(final):
            raise OSError(28, "No space left on device")
    assert info.value.path == final and "No space left" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_folder_and_an_unwritable_location(tmp_path):
    with pytest.raises(OutputError, match="is a folder"):
        with atomic_write(tmp_path):
            pass
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create"):
        with atomic_write(blocker / "sub" / "out.bin"):
            pass


def test_writer_that_removes_its_file_is_an_error(tmp_path):
    with pytest.raises(OutputError, match="did not produce"):
        with atomic_write(tmp_path / "x.bin") as tmp:
            tmp.unlink()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o644
