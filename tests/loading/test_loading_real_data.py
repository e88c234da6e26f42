"""Real data beyond dicom2nifti's suite: 9 transfer syntaxes, a JPEG 2000 CT series, a CT series with NRRD labels."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from app.errors import InputError
from app.loading import load_volume
from app.loading.dicom.header import read_header
from app.loading.dicom.pixels import decode


@pytest.fixture(scope="module")
def qa_ts(shared_data: Path) -> Path:
    return shared_data / "dcm-qa-ts"


def demosaic(mosaic: np.ndarray, tile: int = 64, n_slices: int = 35) -> np.ndarray:
    """Siemens mosaic (rows, columns) -> (rows, columns, slice) tiles, row-major tile order."""
    per_row = mosaic.shape[1] // tile
    return np.stack(
        [
            mosaic[
                (t // per_row) * tile : (t // per_row + 1) * tile,
                (t % per_row) * tile : (t % per_row + 1) * tile,
            ]
            for t in range(n_slices)
        ],
        axis=-1,
    )


def test_nine_transfer_syntaxes_decode_identically_and_match_reference(qa_ts: Path) -> None:
    decoded = {}
    for n in range(1, 10):
        header = read_header(qa_ts / "In" / f"{n}.dcm")
        frames = decode(header)
        assert frames.shape == (1, 384, 384) and frames.dtype == np.uint16
        decoded[header.transfer_syntax_uid] = frames[0]
        # dcm2niix's reference: the de-mosaiced tiles, (column, row) order with rows flipped
        reference = np.asarray(nib.load(qa_ts / "Ref" / f"{n}.nii").dataobj)
        tiles = demosaic(frames[0]).transpose(1, 0, 2)[:, ::-1]
        np.testing.assert_array_equal(tiles.astype(np.int64), reference.astype(np.int64))
    assert len(decoded) == 7  # 9 files, 7 distinct transfer syntaxes (JPEG lossless and JPEG-LS twice)
    first = next(iter(decoded.values()))
    for array in decoded.values():
        np.testing.assert_array_equal(array, first)


def test_mosaic_is_refused_as_a_volume(qa_ts: Path) -> None:
    with pytest.raises(InputError, match="MOSAIC"):
        load_volume(qa_ts / "In" / "1.dcm")


def test_totalseg_jpeg2000_ct_series(shared_data: Path) -> None:
    """20-slice CT (J2K, UIDs blanked by the anonymiser): the grid of example_seg_dicom.nii.gz, SimpleITK's HU."""
    folder = shared_data / "totalseg-ct" / "example_ct_dicom"
    volume = load_volume(folder)
    assert volume.shape == (512, 512, 20)
    assert volume.array.dtype == np.int16  # 12-bit unsigned + RescaleIntercept -1024
    np.testing.assert_allclose(volume.spacing, [0.9765625, 0.9765625, 2.0])  # positions, not SliceThickness 3

    reference = nib.as_closest_canonical(nib.load(shared_data / "totalseg-ct" / "example_seg_dicom.nii.gz"))
    ras = volume.in_space("RAS")
    ours = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(ras.array), ras.affine))
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.affine, reference.affine, atol=0.05)

    meta = volume.dicom
    for k in (0, 9, 19):  # SimpleITK (GDCM) decodes these slices to the same HU (a few: J2K decoding is slow)
        image = sitk.ReadImage(meta.files[k])
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image)[0].T, volume.array[:, :, k])
        np.testing.assert_allclose(image.GetOrigin(), volume.world_coordinates([[0, 0, k]])[0], atol=1e-3)

    assert meta.series_instance_uid == ""  # blanked in the files; recorded as found
    # SOPInstanceUID is blank too: the UIDs come from the file meta (MediaStorageSOPInstanceUID)
    assert all(uid.startswith("1.3.12.2.1107.5.1.4.60064") for uid in meta.sop_instance_uids)
    # files are listed in k order: k=0 is the origin slice, z increases with k
    positions = [read_header(f).frames[0].position for f in meta.files]
    np.testing.assert_allclose(positions[0], volume.affine[:3, 3])
    assert np.all(np.diff([p[2] for p in positions]) > 0)


def test_ct_3slice_matches_dcmqi_label_grid(shared_data: Path) -> None:
    """SliceThickness 1.25 but spacing 1.0: the grid must equal the one of dcmqi's label map (NRRD, LPS)."""
    folder = shared_data / "dcmqi-seg" / "ct-3slice"
    volume = load_volume(folder)
    labels = load_volume(shared_data / "dcmqi-seg" / "liver_seg.nrrd")
    assert volume.shape == labels.shape == (512, 512, 3)
    np.testing.assert_allclose(volume.in_space("RAS").affine, labels.affine, atol=1e-3)
    assert volume.array.dtype == np.int32  # signed 16-bit stored + intercept -1024 needs 17 bits
    assert volume.array.min() >= -3024
