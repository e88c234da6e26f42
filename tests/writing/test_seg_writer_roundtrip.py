"""write_dicom_seg round trips: write, read back with highdicom (our reader) and with plain pydicom, compare
pixels, geometry (centroids against the NIfTI writer) and header identity; real and synthetic series."""

from __future__ import annotations

import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from app.errors import InputError, OutputError
from app.loading.seg import read_dicom_seg
from app.volume import Volume
from app.writing.dicom_seg import DEFAULT_SERIES_DESCRIPTION, default_series_number, write_dicom_seg
from app.writing.nifti import write_nifti

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # highdicom: single-component patient names

IDENTITY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime", "AccessionNumber", "FrameOfReferenceUID",
)  # fmt: skip


def _rotation(axis, degrees) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    angle = np.deg2rad(degrees)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


OBLIQUE = _rotation([1, 2, 0.5], 27)
GEOMETRIES = {
    "axial": (1, 0, 0, 0, 1, 0),
    "negative_column_cosine": (1, 0, 0, 0, -1, 0),
    "negative_row_and_column_cosines": (-1, 0, 0, 0, -1, 0),
    "sagittal": (0, 1, 0, 0, 0, -1),
    "oblique": tuple(OBLIQUE[:, 0]) + tuple(OBLIQUE[:, 1]),
}


def _phantom(shape) -> np.ndarray:
    """Two asymmetric blobs (label 1: box, label 2: ellipsoid); the last slice stays empty."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[2:7, 3:12, 1:3] = 1
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    labels[((i - 13) / 4.0) ** 2 + ((j - 16) / 5.0) ** 2 + ((k - 3) / 1.6) ** 2 <= 1] = 2
    labels[:, :, -1] = 0
    return labels


def _centroids(volume: Volume, numbers) -> dict[int, np.ndarray]:
    """Segment centroids in LPS mm."""
    lps = volume.in_space("LPS")
    return {n: lps.world_coordinates(np.argwhere(lps.array == n).mean(axis=0))[0] for n in numbers}


def check_round_trip(
    seg_path: Path, labels: Volume, source_paths, seg_tools, tmp_path: Path
) -> pydicom.Dataset:
    """Pixels, geometry, identity and references of the SEG at ``seg_path`` against the label Volume."""
    lps = labels.in_space("LPS")
    numbers = [int(n) for n in np.unique(lps.array) if n]

    # 1. highdicom-based reader: same grid, same voxels.
    read, _ = read_dicom_seg(seg_path)
    assert read.shape == lps.shape
    np.testing.assert_allclose(read.affine, lps.affine, atol=1e-3)
    np.testing.assert_array_equal(read.array, lps.array)

    # 2. plain pydicom: frames placed by their own PlanePosition on the label grid.
    np.testing.assert_array_equal(seg_tools.masks_to_labels(seg_tools.decode_seg(seg_path, lps)), lps.array)

    # 3. centroids in patient coordinates agree with the NIfTI writer's (read by nibabel) within half a voxel.
    nifti = nib.load(write_nifti(labels, tmp_path / f"{seg_path.stem}.nii.gz"))
    nifti_volume = Volume(np.asarray(nifti.dataobj), nifti.affine, space="RAS")
    half_voxel = 0.5 * float(lps.spacing.min())
    seg_centroids, nifti_centroids = _centroids(read, numbers), _centroids(nifti_volume, numbers)
    for n in numbers:
        assert np.linalg.norm(seg_centroids[n] - nifti_centroids[n]) < half_voxel

    # 4. identity copied, new UIDs; every frame derived from the source image at its own position.
    seg = pydicom.dcmread(seg_path)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in source_paths]
    for keyword in IDENTITY:  # Type 2 ones absent from the source are present and empty in the SEG
        assert keyword in seg and seg.get(keyword) == sources[0].get(keyword, ""), keyword
    source_uids = {str(ds.SOPInstanceUID) for ds in sources}
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID and seg.SOPInstanceUID not in source_uids
    assert seg.Modality == "SEG" and seg.SeriesDescription == DEFAULT_SERIES_DESCRIPTION
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    referenced = {
        str(item.ReferencedSOPInstanceUID)
        for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == source_uids
    positions = _source_positions(sources)
    for item in seg.PerFrameFunctionalGroupsSequence:
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        key = (str(ref.ReferencedSOPInstanceUID), int(ref.get("ReferencedFrameNumber", 0)) or None)
        np.testing.assert_allclose(
            np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float),
            positions[key],
            atol=1e-3,
        )
    return seg


def _source_positions(sources) -> dict[tuple[str, int | None], np.ndarray]:
    positions = {}
    for ds in sources:
        if "PerFrameFunctionalGroupsSequence" in ds:
            for number, item in enumerate(ds.PerFrameFunctionalGroupsSequence, start=1):
                ipp = item.PlanePositionSequence[0].ImagePositionPatient
                positions[(str(ds.SOPInstanceUID), number)] = np.asarray(ipp, dtype=float)
        else:
            positions[(str(ds.SOPInstanceUID), None)] = np.asarray(ds.ImagePositionPatient, dtype=float)
    return positions


# --- synthetic geometries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize(("segmentation_type", "with_meta"), [("BINARY", True), ("LABELMAP", False)])
def test_synthetic_geometries(tmp_path, seg_tools, geometry, segmentation_type, with_meta):
    paths = seg_tools.make_series(
        tmp_path / "src", columns=20, rows=24, slices=6, orientation=GEOMETRIES[geometry], modality="MR"
    )
    grid = seg_tools.series_volume(paths, with_meta=with_meta)
    labels = grid.with_array(_phantom(grid.shape))
    written = write_dicom_seg(
        labels, labels.dicom if with_meta else paths, {1: "liver", 2: "spleen"}, tmp_path / "seg.dcm",
        segmentation_type=segmentation_type,
    )  # fmt: skip
    seg = check_round_trip(written.path, labels, paths, seg_tools, tmp_path)
    # empty frames kept: every slice (the last one is empty) for every segment
    assert seg.NumberOfFrames == written.number_of_frames == 6 * (2 if segmentation_type == "BINARY" else 1)
    assert seg.SegmentationType == segmentation_type
    assert written.source_sop_instance_uids == tuple(grid_uid for grid_uid in _k_order_uids(paths))


def _k_order_uids(paths) -> list[str]:
    volume_meta = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    iop = np.asarray(volume_meta[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return [
        str(ds.SOPInstanceUID)
        for ds in sorted(volume_meta, key=lambda d: np.dot(normal, d.ImagePositionPatient))
    ]


def test_ras_volume_gives_the_same_frames(tmp_path, seg_tools):
    paths = seg_tools.make_series(
        tmp_path / "src", columns=20, rows=24, slices=6, orientation=GEOMETRIES["oblique"]
    )
    labels = seg_tools.series_volume(paths).with_array(_phantom((20, 24, 6)))
    uids = {"series_instance_uid": "1.2.3.4.5", "sop_instance_uid": "1.2.3.4.5.1"}
    from_lps = write_dicom_seg(labels, paths, {1: "a", 2: "b"}, tmp_path / "lps.dcm", **uids)
    from_ras = write_dicom_seg(labels.in_space("RAS"), paths, {1: "a", 2: "b"}, tmp_path / "ras.dcm", **uids)
    lps_ds, ras_ds = pydicom.dcmread(from_lps.path), pydicom.dcmread(from_ras.path)
    np.testing.assert_array_equal(lps_ds.pixel_array, ras_ds.pixel_array)
    assert lps_ds.PerFrameFunctionalGroupsSequence == ras_ds.PerFrameFunctionalGroupsSequence


def test_omitting_empty_frames_reads_back_the_same(tmp_path, seg_tools):
    paths = seg_tools.make_series(tmp_path / "src", columns=20, rows=24, slices=6)
    labels = seg_tools.series_volume(paths).with_array(_phantom((20, 24, 6)))
    kept = write_dicom_seg(labels, paths, {1: "a", 2: "b"}, tmp_path / "kept.dcm")
    sparse = write_dicom_seg(
        labels, paths, {1: "a", 2: "b"}, tmp_path / "sparse.dcm", keep_empty_frames=False
    )
    assert sparse.number_of_frames < kept.number_of_frames
    read, _ = read_dicom_seg(sparse.path)
    np.testing.assert_array_equal(
        seg_tools.masks_to_labels(seg_tools.decode_seg(sparse.path, labels)), labels.array
    )
    assert read.shape[2] <= labels.shape[2]  # the SEG's own grid covers the non-empty slices only


def test_series_number_description_and_uids(tmp_path, seg_tools):
    paths = seg_tools.make_series(tmp_path / "src", columns=8, rows=8, slices=2, series_number=1234)
    labels = seg_tools.series_volume(paths).with_array(np.ones((8, 8, 2), np.uint8))
    first = write_dicom_seg(labels, paths, {1: "x"}, tmp_path / "1.dcm")
    second = write_dicom_seg(labels, paths, {1: "x"}, tmp_path / "2.dcm")
    assert first.series_number == second.series_number == default_series_number(1234) == 9234
    assert (
        first.series_instance_uid != second.series_instance_uid
        and first.sop_instance_uid != second.sop_instance_uid
    )
    custom = write_dicom_seg(
        labels, paths, {1: "x"}, tmp_path / "3.dcm", series_number=77, series_description="my AI output"
    )
    ds = pydicom.dcmread(custom.path)
    assert (ds.SeriesNumber, ds.SeriesDescription) == (77, "my AI output")
    assert default_series_number(None) == 9000
    with pytest.raises(ValueError, match="64"):
        write_dicom_seg(labels, paths, {1: "x"}, tmp_path / "4.dcm", series_description="x" * 65)

    unnumbered = seg_tools.make_series(tmp_path / "src2", columns=8, rows=8, slices=2, series_number=None)
    labels2 = seg_tools.series_volume(unnumbered).with_array(np.ones((8, 8, 2), np.uint8))
    assert write_dicom_seg(labels2, unnumbered, {1: "x"}, tmp_path / "5.dcm").series_number == 9000


def test_segment_descriptions_are_coded(tmp_path, seg_tools):
    paths = seg_tools.make_series(tmp_path / "src", columns=20, rows=24, slices=6, modality="MR")
    labels = seg_tools.series_volume(paths).with_array(_phantom((20, 24, 6)))
    written = write_dicom_seg(
        labels, paths, {0: "background", 1: "anterior", 2: "posterior"}, tmp_path / "hippo.dcm",  # channel_def
        label_context="hippocampus", algorithm_name="hippocampus_unet", algorithm_version="1.2.0",
    )  # fmt: skip
    seg = pydicom.dcmread(written.path)
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["anterior", "posterior"]
    for item, modifier in zip(seg.SegmentSequence, ("255549009", "255551008"), strict=True):
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"
        type_item = item.SegmentedPropertyTypeCodeSequence[0]
        assert (type_item.CodeValue, type_item.CodingSchemeDesignator) == ("5366008", "SCT")
        assert type_item.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == modifier
        algorithm = item.SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("hippocampus_unet", "1.2.0")
        assert algorithm.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # DCM Artificial Intelligence
    _, segments = read_dicom_seg(written.path)
    assert segments == {1: "anterior", 2: "posterior"}


# --- multi-frame sources ---------------------------------------------------------------------------------------


def test_synthetic_multiframe_source_with_shuffled_frames(tmp_path, seg_tools):
    hd = pytest.importorskip("highdicom")
    paths = seg_tools.make_series(
        tmp_path / "src", columns=20, rows=24, slices=6, orientation=GEOMETRIES["oblique"]
    )
    singles = [pydicom.dcmread(p) for p in paths]
    random.Random(3).shuffle(singles)  # frame order != stack order
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        legacy_datasets=singles, series_instance_uid=hd.UID(), series_number=8, sop_instance_uid=hd.UID(),
        instance_number=1,
    )  # fmt: skip
    mf_path = tmp_path / "mf.dcm"
    enhanced.save_as(mf_path, enforce_file_format=True)

    grid = seg_tools.multiframe_volume(mf_path)
    assert list(grid.dicom.frame_numbers) != sorted(grid.dicom.frame_numbers)
    labels = grid.with_array(_phantom(grid.shape))
    written = write_dicom_seg(labels, labels.dicom, {1: "a", 2: "b"}, tmp_path / "seg.dcm")
    check_round_trip(written.path, labels, [mf_path], seg_tools, tmp_path)

    no_meta = Volume(labels.array, labels.affine, space="LPS")  # matched by position instead
    again = write_dicom_seg(
        no_meta, [mf_path], {1: "a", 2: "b"}, tmp_path / "seg2.dcm", segmentation_type="LABELMAP"
    )
    check_round_trip(again.path, labels, [mf_path], seg_tools, tmp_path)


def test_real_legacy_converted_multiframe(shared_data, seg_tools, tmp_path):
    folder = shared_data / "dcmqi-seg" / "23x38x3"
    reference = seg_tools.nrrd_volume(folder / "nrrd" / "label.nrrd")
    grid = seg_tools.multiframe_volume(folder / "multiframe" / "mf.dcm")
    np.testing.assert_allclose(grid.affine, reference.affine, atol=1e-4)
    labels = grid.with_array(reference.array.astype(np.uint8))
    written = write_dicom_seg(labels, labels.dicom, {1: "liver"}, tmp_path / "seg.dcm")
    check_round_trip(written.path, labels, [folder / "multiframe" / "mf.dcm"], seg_tools, tmp_path)
    dcmqi_labels, _ = read_dicom_seg(folder / "seg" / "label.seg")  # dcmqi's SEG of the single-frame images
    np.testing.assert_array_equal(read_dicom_seg(written.path)[0].array, dcmqi_labels.array)


# --- real single-frame series ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct3(shared_data):
    folder = shared_data / "dcmqi-seg"
    return sorted((folder / "ct-3slice").glob("*.dcm")), folder


@pytest.mark.parametrize("segmentation_type", ["BINARY", "LABELMAP"])
def test_real_ct_with_real_label_map(ct3, seg_tools, tmp_path, segmentation_type):
    """dcmqi's liver+spine label map on its 3-slice CT (thickness 1.25 mm, spacing 1 mm); no meta: by position."""
    paths, folder = ct3
    labels = seg_tools.nrrd_volume(folder / "liver_spine_seg.nrrd")
    written = write_dicom_seg(
        labels, paths, {1: "Liver", 2: "Spine"}, tmp_path / "seg.dcm", segmentation_type=segmentation_type
    )
    seg = check_round_trip(written.path, labels, paths, seg_tools, tmp_path)
    assert seg.NumberOfFrames == (6 if segmentation_type == "BINARY" else 3)


def test_real_ct_through_the_dicom_reader(ct3, seg_tools, tmp_path):
    """The DICOM reader's Volume and meta (the writer's contract) -> SEG, identical to dcmqi's liver.dcm."""
    from app.loading.dicom.reader import read_series

    paths, folder = ct3
    image = read_series(paths)
    reference = seg_tools.nrrd_volume(folder / "liver_seg.nrrd")
    np.testing.assert_allclose(image.affine, reference.affine, atol=1e-4)
    labels = image.with_array(reference.array.astype(np.uint8))
    written = write_dicom_seg(labels, labels.dicom, {1: "liver"}, tmp_path / "liver.dcm")
    check_round_trip(written.path, labels, paths, seg_tools, tmp_path)
    assert tuple(written.source_sop_instance_uids) == image.dicom.sop_instance_uids
    ours, dcmqi = read_dicom_seg(written.path)[0], read_dicom_seg(folder / "liver.dcm")[0]
    np.testing.assert_array_equal(ours.array, dcmqi.array)
    np.testing.assert_allclose(ours.affine, dcmqi.affine, atol=1e-4)


def test_labelmap_with_gapped_label_values(ct3, seg_tools, tmp_path):
    paths, folder = ct3
    labels = seg_tools.nrrd_volume(folder / "liver_spine_gapped_seg.nrrd")  # values {1, 5}
    with pytest.raises(OutputError, match=r"BINARY SEG needs segment numbers 1..N, got \[1, 5\]"):
        write_dicom_seg(labels, paths, {1: "liver", 5: "spine"}, tmp_path / "binary.dcm")
    written = write_dicom_seg(
        labels, paths, {1: "liver", 5: "spine"}, tmp_path / "lm.dcm", segmentation_type="LABELMAP"
    )
    check_round_trip(written.path, labels, paths, seg_tools, tmp_path)


def test_real_compressed_ct_with_peer_tool_labels(shared_data, seg_tools, tmp_path):
    """TotalSegmentator's 20-slice JPEG 2000 CT and its labels (stored LAS, 31 classes).

    The files have blank SOP Class/Instance, Series and Study UIDs (anonymised): refused. With UIDs restored in memory
    (datasets as source), labels as stored are refused (off-grid), and accepted once reoriented onto the series
    grid with nibabel: LABELMAP with all 31 classes, BINARY with three renumbered 1..3.
    """
    hd = pytest.importorskip("highdicom")
    folder = shared_data / "totalseg-ct"
    paths = sorted((folder / "example_ct_dicom").iterdir())
    grid = seg_tools.series_volume(paths, with_meta=False)
    stored = nib.load(folder / "example_seg_dicom.nii.gz")
    target = nib.orientations.io_orientation(grid.in_space("RAS").affine)
    transform = nib.orientations.ornt_transform(nib.orientations.io_orientation(stored.affine), target)
    reoriented = stored.as_reoriented(transform)
    labels = Volume(np.asarray(reoriented.dataobj), reoriented.affine, space="RAS")
    np.testing.assert_allclose(labels.in_space("LPS").affine, grid.affine, atol=1e-3)
    names = {int(v): f"class {int(v)}" for v in np.unique(labels.array) if v}
    assert len(names) == 31

    with pytest.raises(InputError, match="no SOPClassUID") as info:
        write_dicom_seg(labels, paths, names, tmp_path / "x.dcm", segmentation_type="LABELMAP")
    assert info.value.path in paths

    sources, study_uid, series_uid = [], hd.UID(), hd.UID()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        sources.append(ds)
    as_stored = Volume(np.asarray(stored.dataobj), stored.affine, space="RAS")
    with pytest.raises(OutputError, match="resample the label map onto the source series grid"):
        write_dicom_seg(as_stored, sources, names, tmp_path / "x.dcm", segmentation_type="LABELMAP")

    repaired = tmp_path / "repaired"
    repaired.mkdir()
    for ds in sources:  # the round-trip checker reads sources from files
        ds.save_as(repaired / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    repaired_paths = sorted(repaired.iterdir())
    written = write_dicom_seg(labels, sources, names, tmp_path / "all.dcm", segmentation_type="LABELMAP")
    check_round_trip(written.path, labels, repaired_paths, seg_tools, tmp_path)

    subset = np.zeros(labels.shape, np.uint8)
    for number, value in enumerate((1, 5, 117), start=1):  # three of the larger classes, renumbered 1..3
        subset[labels.array == value] = number
    written = write_dicom_seg(
        labels.with_array(subset), sources, {1: "a", 2: "b", 3: "c"}, tmp_path / "bin.dcm"
    )
    check_round_trip(written.path, labels.with_array(subset), repaired_paths, seg_tools, tmp_path)


# --- real sources lacking what highdicom reads: Type 2 attributes, SliceThickness, shared geometry ----------------

#: Type 2 patient/study attributes anonymisers delete; highdicom 0.28 reads each by attribute access
TYPE2 = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
    "AccessionNumber",
)  # fmt: skip


def _real_copy(files, folder: Path, *, delete=(), **values) -> list[Path]:
    """Copies of real DICOM files with a FrameOfReferenceUID (the excerpts lost it), ``delete`` removed and
    ``values`` set (``None`` = present and empty)."""
    folder.mkdir(parents=True)
    frame_of_reference = pydicom.uid.generate_uid()
    paths = []
    for file in files:
        ds = pydicom.dcmread(file)
        ds.FrameOfReferenceUID = frame_of_reference
        for keyword in delete:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / Path(file).name)
        paths.append(folder / Path(file).name)
    return paths


@pytest.fixture(scope="module")
def hitachi(shared_data):
    """The real Hitachi MR series: 4 slices 4 mm apart, SpacingBetweenSlices 4, no SliceThickness."""
    return sorted((shared_data / "dicom2nifti-suite" / "hitachi" / "anatomical" / "001").iterdir())


@pytest.mark.parametrize(
    ("delete", "values"),
    [
        ((), {}),  # as stored: no SliceThickness, no AccessionNumber
        (TYPE2, {}),  # anonymised: every Type 2 patient/study attribute deleted
        ((), {"AccessionNumber": ""}),  # only SliceThickness absent
        ((), {"AccessionNumber": "", "SliceThickness": None}),  # SliceThickness present and empty (Type 2)
    ],
    ids=["as_stored", "type2_deleted", "no_slice_thickness", "empty_slice_thickness"],
)
def test_real_series_without_type2_attributes_or_slice_thickness(
    hitachi, seg_tools, tmp_path, delete, values
):
    """The SEG is written with the absent Type 2 attributes empty and SliceThickness = the slice spacing (4 mm),
    which highdicom needs to read it back; the caller's datasets are not modified."""
    paths = _real_copy(hitachi, tmp_path / "src", delete=delete, **values)
    grid = seg_tools.series_volume(paths)
    labels = grid.with_array(_phantom(grid.shape))
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    written = write_dicom_seg(labels, sources, {1: "a", 2: "b"}, tmp_path / "seg.dcm")
    seg = check_round_trip(written.path, labels, paths, seg_tools, tmp_path)
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == pytest.approx(4.0)
    for keyword in delete:
        assert seg[keyword].value in ("", None) and keyword not in sources[0], keyword
    assert sources[0].get("SliceThickness") is None  # the originals are left as they were


def test_single_real_slice_without_slice_thickness(hitachi, seg_tools, tmp_path):
    """One slice: no spacing between label slices, so the SEG's thickness is the source's SpacingBetweenSlices;
    without that either, refused naming the file."""
    [path] = _real_copy(hitachi[:1], tmp_path / "src")
    grid = seg_tools.series_volume([path])
    labels2d = np.zeros(grid.shape[:2], np.uint8)
    labels2d[20:40, 10:30] = 1
    volume = Volume(labels2d, grid.affine, space="LPS", dicom=grid.dicom)
    written = write_dicom_seg(volume, [path], {1: "lesion"}, tmp_path / "seg.dcm")
    seg = pydicom.dcmread(written.path)
    assert float(seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness) == 4.0
    np.testing.assert_array_equal(read_dicom_seg(written.path)[0].array[:, :, 0], labels2d)

    [bare] = _real_copy(hitachi[:1], tmp_path / "bare", delete=["SpacingBetweenSlices"])
    with pytest.raises(InputError, match="no SliceThickness and no SpacingBetweenSlices") as info:
        write_dicom_seg(volume, [bare], {1: "lesion"}, tmp_path / "bare.dcm")
    assert info.value.path == bare
    assert not (tmp_path / "bare.dcm").exists()


def test_highdicom_refusal_names_the_source_file(hitachi, seg_tools, tmp_path):
    paths = _real_copy(hitachi, tmp_path / "src", PatientSex="Q")  # not M, F or O
    labels = seg_tools.series_volume(paths)
    with pytest.raises(OutputError, match=r"highdicom cannot build the SEG from source .*\.dcm: .*'Q'"):
        write_dicom_seg(
            labels.with_array(_phantom(labels.shape)), paths, {1: "a", 2: "b"}, tmp_path / "s.dcm"
        )


def _enhanced(shared_data, vendor: str) -> Path:
    return next((shared_data / "dicom2nifti-suite" / vendor / "anatomical" / "001").iterdir())


@pytest.mark.parametrize("with_meta", [True, False])
@pytest.mark.parametrize("vendor", ["philips_enhanced", "siemens_multiframe"])
def test_real_enhanced_mr_with_per_frame_geometry(shared_data, seg_tools, tmp_path, vendor, with_meta):
    """Real enhanced MR (8 frames) with PixelMeasures and PlaneOrientation only in the per-frame items: as
    Philips writes it, and the Siemens excerpt, which has no shared functional group at all."""
    original = pydicom.dcmread(_enhanced(shared_data, vendor), stop_before_pixels=True)
    empty = {keyword: "" for keyword in TYPE2 if keyword not in original}  # only the geometry is missing
    [path] = _real_copy([_enhanced(shared_data, vendor)], tmp_path / "src", **empty)
    source = pydicom.dcmread(path, stop_before_pixels=True)
    for shared in source.get("SharedFunctionalGroupsSequence", []):
        assert "PixelMeasuresSequence" not in shared and "PlaneOrientationSequence" not in shared
    grid = seg_tools.multiframe_volume(path)
    labels = grid.with_array(_phantom(grid.shape))
    if not with_meta:  # matched by position
        labels = Volume(labels.array, labels.affine, space="LPS")
    written = write_dicom_seg(labels, [path], {1: "a", 2: "b"}, tmp_path / "seg.dcm")
    seg = check_round_trip(written.path, labels, [path], seg_tools, tmp_path)
    referenced = {
        int(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
        for item in seg.PerFrameFunctionalGroupsSequence
    }
    assert referenced == set(range(1, 9))
    seg_measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    frame_measures = source.PerFrameFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert seg_measures.PixelSpacing == frame_measures.PixelSpacing
    assert seg_measures.SliceThickness == frame_measures.SliceThickness


def test_real_enhanced_mr_whose_frames_differ_is_refused_by_name(shared_data, seg_tools, tmp_path):
    [path] = _real_copy([_enhanced(shared_data, "philips_enhanced")], tmp_path / "src")
    ds = pydicom.dcmread(path)
    ds.PerFrameFunctionalGroupsSequence[5].PixelMeasuresSequence[0].SliceThickness = "2.5"
    ds.save_as(path)
    grid = seg_tools.multiframe_volume(path)
    with pytest.raises(InputError, match="PixelMeasuresSequence differs between frame 1 and frame 6") as info:
        write_dicom_seg(grid.with_array(_phantom(grid.shape)), [path], {1: "a", 2: "b"}, tmp_path / "seg.dcm")
    assert info.value.path == path


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path, seg_tools):
    paths = seg_tools.make_series(
        tmp_path / "src", columns=20, rows=24, slices=6, orientation=GEOMETRIES["oblique"]
    )
    return paths, seg_tools.series_volume(paths).with_array(_phantom((20, 24, 6)))


def test_refuses_labels_off_the_source_grid(small, tmp_path):
    paths, labels = small
    shifted = labels.affine.copy()
    shifted[:3, 3] += labels.affine[:3, 0]  # one column over
    off = Volume(labels.array, shifted, space="LPS")
    with pytest.raises(OutputError, match=r"mm away from source SOP instance .* resample"):
        write_dicom_seg(off, paths, {1: "a", 2: "b"}, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()

    with pytest.raises(OutputError, match="19 x 24 .* but source .* is 20 x 24"):
        write_dicom_seg(
            Volume(labels.array[:19], labels.affine, space="LPS"), paths, {1: "a", 2: "b"}, tmp_path / "s.dcm"
        )


def test_stale_meta_is_caught_and_position_matching_handles_any_k_order(small, tmp_path, seg_tools):
    """A pipeline that reverses k (adjusting the affine) but keeps its DicomSource has stale UIDs: refused.
    The same volume without meta is matched by position and written correctly."""
    paths, labels = small
    reversed_affine = labels.affine.copy()
    reversed_affine[:3, 3] = labels.world_coordinates([[0, 0, labels.shape[2] - 1]])[0]
    reversed_affine[:3, 2] = -labels.affine[:3, 2]
    stale = Volume(labels.array[:, :, ::-1], reversed_affine, space="LPS", dicom=labels.dicom)
    with pytest.raises(OutputError, match="mm away"):
        write_dicom_seg(stale, paths, {1: "a", 2: "b"}, tmp_path / "stale.dcm")
    fresh = Volume(stale.array, stale.affine, space="LPS")
    written = write_dicom_seg(fresh, paths, {1: "a", 2: "b"}, tmp_path / "fresh.dcm")
    np.testing.assert_array_equal(
        seg_tools.masks_to_labels(seg_tools.decode_seg(written.path, labels)), labels.array
    )


def test_single_image_with_a_2d_label_map(shared_data, seg_tools, tmp_path):
    """One CT image (highdicom's ct_image.dcm) and a 2D (i, j) label Volume."""
    path = shared_data / "highdicom-seg" / "ct_image.dcm"
    grid = seg_tools.series_volume([path])
    labels2d = np.zeros(grid.shape[:2], np.uint8)
    labels2d[30:60, 70:90] = 1
    volume = Volume(labels2d, grid.affine, space="LPS", dicom=grid.dicom)
    written = write_dicom_seg(volume, volume.dicom, {1: "lesion"}, tmp_path / "seg.dcm")
    read, _ = read_dicom_seg(written.path)
    assert read.shape == (*labels2d.shape, 1)
    np.testing.assert_array_equal(read.array[:, :, 0], labels2d)
    np.testing.assert_allclose(read.affine[:3, [0, 1, 3]], grid.affine[:3, [0, 1, 3]], atol=1e-4)


def test_refuses_meta_pointing_elsewhere(small, tmp_path, seg_tools):
    paths, labels = small
    other = seg_tools.make_series(
        tmp_path / "other", columns=20, rows=24, slices=6, orientation=GEOMETRIES["oblique"]
    )
    with pytest.raises(OutputError, match="not among the source images"):
        write_dicom_seg(labels, other, {1: "a", 2: "b"}, tmp_path / "seg.dcm")


def test_refuses_undescribed_and_non_integer_labels(small, tmp_path):
    paths, labels = small
    with pytest.raises(OutputError, match=r"label values \[2\] occur .* no segment description"):
        write_dicom_seg(labels, paths, {1: "a"}, tmp_path / "seg.dcm")
    with pytest.raises(OutputError, match="integer or bool"):
        write_dicom_seg(
            labels.with_array(labels.array.astype(np.float32)), paths, {1: "a", 2: "b"}, tmp_path / "s.dcm"
        )
    with pytest.raises(ValueError, match="BINARY' or 'LABELMAP"):
        write_dicom_seg(labels, paths, {1: "a", 2: "b"}, tmp_path / "s.dcm", segmentation_type="FRACTIONAL")


def test_failed_save_leaves_no_file(small, tmp_path, monkeypatch):
    hd = pytest.importorskip("highdicom")
    paths, labels = small

    def broken_save(self, filename, **kwargs):
        Path(filename).write_bytes(b"DICM partial")
        raise RuntimeError("simulated crash while saving")

    monkeypatch.setattr(hd.seg.Segmentation, "save_as", broken_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_dicom_seg(labels, paths, {1: "a", 2: "b"}, tmp_path / "out" / "seg.dcm")
    assert list((tmp_path / "out").iterdir()) == []
