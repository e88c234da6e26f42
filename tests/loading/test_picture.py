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


def test_tiff_written_page_by_page_is_a_stack_and_odd_pages_are_named(tmp_path):
    """One ``TiffWriter.write`` per page makes a series per page: equal pages are the stack (not its first page
    only); pages of another size are left out with a warning that says so."""
    import tifffile

    pages = np.arange(3 * 20 * 30, dtype=np.uint8).reshape(3, 20, 30)
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        for page in pages:
            tif.write(page)
    assert len(tifffile.TiffFile(path).series) == 3
    volume = read_picture(path)
    assert volume.shape == (30, 20, 3) and volume.warnings == ()
    np.testing.assert_array_equal(volume.array, pages.T)
    odd = tmp_path / "odd.tif"
    with tifffile.TiffWriter(odd) as tif:
        tif.write(pages[0])
        tif.write(np.zeros((10, 12), np.uint8))
    volume = read_picture(odd)
    assert volume.shape == (30, 20)
    assert (
        len(volume.warnings) == 1
        and "only the first (20x30 uint8) was read, not 10x12 uint8" in volume.warnings[0]
    )


def test_colour_picture_is_the_same_grey_as_png_and_as_tiff(tmp_path):
    """A colour picture's grey values (ITU-R BT.601 luma, Pillow's PNG conversion) do not depend on the container:
    TIFF equals PNG up to Pillow's rounding to 8 bits."""
    import tifffile

    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    rgb[0, 0] = (200, 50, 10)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    png, tiff = read_picture(tmp_path / "c.png").array, read_picture(tmp_path / "c.tif").array
    assert np.max(np.abs(png.astype(float) - tiff)) <= 0.5 + 1e-9
    assert tiff[0, 0] == pytest.approx(0.299 * 200 + 0.587 * 50 + 0.114 * 10)
