"""PNG/TIFF pictures: read in MONAI PILReader's index order, written back losslessly, discovered as cases."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.errors import InputError, OutputError
from app.loading import discover_inputs
from app.loading.picture import read_picture
from app.volume import Volume
from app.writing.picture import write_picture


def test_png_is_read_in_pil_reader_order(tmp_path):
    from monai.data import PILReader

    picture = np.arange(6 * 4, dtype=np.uint8).reshape(6, 4)  # 6 rows, 4 columns
    Image.fromarray(picture).save(tmp_path / "a.png")
    volume = read_picture(tmp_path / "a.png")
    assert volume.shape == (4, 6) and volume.space == "RAS"
    np.testing.assert_array_equal(volume.affine, np.eye(4))
    reader = PILReader()
    monai_array, _ = reader.get_data(reader.read(str(tmp_path / "a.png")))
    np.testing.assert_array_equal(volume.array, monai_array)


@pytest.mark.parametrize(
    ("array", "suffix", "mode"),
    [
        (np.array([[0, 255], [1, 7]], np.uint8), ".png", "L"),
        (np.array([[0, 65535], [300, 7]], np.uint16), ".png", "I;16"),
        (np.array([[-1.5, 2.25], [0.0, 1e6]], np.float32), ".tif", "F"),
    ],
)
def test_write_then_read_is_lossless(tmp_path, array, suffix, mode):
    path = write_picture(Volume(array, np.eye(4)), tmp_path / f"x{suffix}")
    assert Image.open(path).mode == mode
    back = read_picture(path)
    np.testing.assert_array_equal(back.array, array)


def test_stack_round_trip_and_png_refused(tmp_path):
    stack = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4)).astype(np.uint8)
    path = write_picture(Volume(stack, np.eye(4)), tmp_path / "stack.tif")
    back = read_picture(path)
    assert back.shape == (5, 3, 4)
    np.testing.assert_array_equal(back.array, stack)
    with pytest.raises(OutputError, match="TIFF"):
        write_picture(Volume(stack, np.eye(4)), tmp_path / "stack.png")


def test_colour_label_refused_and_unknown_suffix_named(tmp_path):
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "c.png")
    with pytest.raises(InputError, match=r"c\.png.*colour"):
        read_picture(tmp_path / "c.png", label=True)
    assert read_picture(tmp_path / "c.png").shape == (4, 4)  # an image: converted to grey
    (tmp_path / "n.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=r"n\.jpg"):
        read_picture(tmp_path / "n.jpg")


def test_pictures_are_cases_only_when_asked(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "slice 1.png")
    write_picture(Volume(np.zeros((4, 4, 2), np.uint8), np.eye(4)), tmp_path / "stack.tiff")
    cases, _ = discover_inputs([tmp_path])
    assert sorted((c.case_id, c.kind) for c in cases) == [("slice_1", "picture"), ("stack", "picture")]
    assert {c.case_id: c.load().shape for c in cases} == {"slice_1": (4, 4), "stack": (4, 4, 2)}
    cases, decisions = discover_inputs([tmp_path], pictures=False)
    assert not cases
    assert [d.action for d in decisions] == ["skipped", "skipped"]
    assert all("3D volumes" in d.reason for d in decisions)
