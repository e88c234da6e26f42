"""The size limit (ReadOptions.max_bytes): every format refuses a declared size over it before reading voxels,
with the DICOM reader's wording, and compressed data cannot inflate past it."""

from __future__ import annotations

import gzip
import struct
import time
import zlib
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import tifffile

from app.errors import InputError
from app.loading import ReadOptions, discover_inputs, load_volume
from app.loading.dicom.options import DicomReadOptions
from app.loading.options import check_declared_size, format_bytes

LIMIT_TEXT = "exceeds the limit of"


def test_read_options_are_validated_and_shared_with_dicom() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ReadOptions(max_bytes=0)
    with pytest.raises(TypeError):
        ReadOptions(1000)  # keyword only: a bare number could be anything
    shared = ReadOptions(max_bytes=123, strict_orientation=True)
    dicom = DicomReadOptions.from_options(shared)
    assert (dicom.max_bytes, dicom.strict_orientation, dicom.spacing_rtol) == (123, True, 0.01)
    own = DicomReadOptions(max_bytes=5, spacing_rtol=0.5)
    assert DicomReadOptions.from_options(own) is own
    assert DicomReadOptions.from_options(None) == DicomReadOptions()


def test_message_is_the_same_for_every_format() -> None:
    with pytest.raises(InputError) as error:
        check_declared_size(Path("x.nii"), (4000, 4000, 4000), 4, ReadOptions())
    assert error.value.reason == (
        "declared size 4000x4000x4000 voxels x 4 bytes = 244141 MiB exceeds the limit of 4096 MiB "
        "(ReadOptions.max_bytes); refused before reading any voxel. If the image is real, raise the limit (unetseg infer --max-input-gib)"
    )
    assert check_declared_size(None, (2, 3), 2, ReadOptions(max_bytes=12)) == 12
    assert format_bytes(200) == "200 bytes" and format_bytes(3 * 2**20) == "3 MiB"


def test_nifti_limit_counts_the_float32_of_scaling(tmp_path: Path) -> None:
    path = tmp_path / "scaled.nii.gz"
    image = nib.Nifti1Image(np.zeros((10, 10, 10), np.int8), np.eye(4))
    image.header.set_data_dtype(np.int8)
    image.header.set_slope_inter(2.0, 1.0)
    nib.save(image, path)
    error = _refused(path, ReadOptions(max_bytes=3999))
    assert error.reason.startswith(
        "declared size 10x10x10 voxels x 4 bytes = 4000 bytes exceeds the limit of 3999"
    )
    volume = load_volume(path, options=ReadOptions(max_bytes=4000))
    assert volume.array.dtype == np.float32 and np.all(volume.array == 1.0)


def test_real_nifti_over_a_small_limit(shared_data: Path) -> None:
    path = shared_data / "msd-hippocampus" / "imagesTr" / "hippocampus_001.nii.gz"
    shape = nib.load(path).shape
    assert nib.load(path).get_data_dtype() == np.uint8
    error = _refused(path, ReadOptions(max_bytes=1000))
    assert error.reason.startswith(f"declared size {'x'.join(map(str, shape))} voxels x 1 bytes")
    assert load_volume(path).shape == shape  # the default limit reads it


def test_nrrd_declared_size_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "bomb.nrrd"
    path.write_bytes(
        b"NRRD0004\ntype: float\ndimension: 3\nspace: left-posterior-superior\nsizes: 4000 4000 4000\n"
        b"space directions: (1,0,0) (0,1,0) (0,0,1)\nendian: little\nencoding: raw\n\n" + b"\0" * 16
    )
    started = time.perf_counter()
    error = _refused(path)
    assert time.perf_counter() - started < 1
    assert error.reason.startswith("declared size 4000x4000x4000 voxels x 4 bytes = 244141 MiB " + LIMIT_TEXT)


def test_nrrd_gzip_stream_longer_than_declared_is_refused_without_keeping_it(tmp_path: Path) -> None:
    path = tmp_path / "gzip_bomb.nrrd"
    header = (
        b"NRRD0004\ntype: uint8\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 4 4\n"
        b"space directions: (1,0,0) (0,1,0) (0,0,1)\nencoding: gzip\n\n"
    )
    path.write_bytes(
        header + gzip.compress(bytes(64 * 2**20), compresslevel=1)
    )  # 64 MiB for 64 bytes declared
    error = _refused(path)
    assert "inflate to more than the 64 bytes the header declares" in error.reason
    path.write_bytes(header + gzip.compress(bytes(range(64))))
    np.testing.assert_array_equal(load_volume(path).array.ravel(order="F"), np.arange(64))


def test_nrrd_data_file_must_be_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "detached.nhdr"
    path.write_bytes(
        b"NRRD0004\ntype: uint8\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 4 4\n"
        b"space directions: (1,0,0) (0,1,0) (0,0,1)\nencoding: raw\ndata file: /dev/zero\n\n"
    )
    assert "/dev/zero is not a regular file" in _refused(path).reason


def test_real_nrrd_reads_within_the_limit(shared_data: Path) -> None:
    path = shared_data / "dcmqi-seg" / "24x38x3" / "nrrd" / "label.nrrd"
    data, _ = nrrd.read(str(path))
    np.testing.assert_array_equal(load_volume(path).array, data)
    assert _refused(path, ReadOptions(max_bytes=100)).reason.startswith(
        "declared size 24x38x3 voxels x 2 bytes"
    )


def test_tiff_pages_times_page_size(tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((5, 30, 40), np.uint16))  # 5 pages of 30 rows x 40 columns
    error = _refused(path, ReadOptions(max_bytes=11999))
    assert error.reason.startswith("declared size 40x30x5 voxels x 2 bytes = 12000 bytes " + LIMIT_TEXT)
    assert load_volume(path, options=ReadOptions(max_bytes=12000)).shape == (40, 30, 5)


def test_png_dimensions_are_checked_before_pillows_own_guard(tmp_path: Path) -> None:
    """A 100000 x 100000 PNG header in a tiny file: unetseg's limit and wording, not Pillow's bomb error."""
    path = tmp_path / "huge.png"
    path.write_bytes(_png(100_000, 100_000))
    error = _refused(path)
    assert error.reason.startswith("declared size 100000x100000 voxels x 1 bytes = 9537 MiB " + LIMIT_TEXT)
    small = tmp_path / "small.png"
    small.write_bytes(_png(200, 100))  # header only: Pillow refuses the missing data with an InputError too
    assert "cannot be read as a picture" in _refused(small).reason


def test_real_png_over_a_small_limit(shared_data: Path) -> None:
    path = shared_data / "isbi2012-em" / "train" / "image" / "0.png"
    assert _refused(path, ReadOptions(max_bytes=1000)).reason.startswith(
        "declared size 512x512 voxels x 1 bytes"
    )
    assert load_volume(path).shape == (512, 512)


def test_case_load_passes_the_options_to_every_reader(shared_data: Path, tmp_path: Path) -> None:
    dicom = shared_data / "dicom2nifti-suite" / "hitachi" / "anatomical" / "001"
    nifti = shared_data / "msd-hippocampus" / "imagesTr" / "hippocampus_001.nii.gz"
    cases, _ = discover_inputs([dicom, nifti])
    assert {c.kind for c in cases} == {"dicom", "nifti"}
    for case in cases:
        with pytest.raises(InputError, match=LIMIT_TEXT):
            case.load(ReadOptions(max_bytes=1000))
        assert case.load().ndim == 3
    error = _refused(dicom, ReadOptions(max_bytes=1000))
    assert error.reason.startswith("declared size 64x64x4 voxels x 2 bytes = 32768 bytes " + LIMIT_TEXT)


def _refused(path: Path, options: ReadOptions | None = None) -> InputError:
    with pytest.raises(InputError) as error:
        load_volume(path, options=options)
    assert error.value.path is not None
    return error.value


def _png(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (8-bit grey) declaring ``width`` x ``height``, then IEND: no image data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
