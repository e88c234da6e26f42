"""Seeded fuzzing of the loading stage: real series and NIfTI files with one random corruption each.

The loader's contract for bad input: discovery never raises for a bad file (it records a skipped-file decision),
and ``Case.load()`` returns a correct Volume or raises :class:`InputError` whose message names a file, never
ValueError, KeyError, NotImplementedError, struct.error, ... The generator is ``tests/fuzz_inputs.py`` (reusable).
"""

from __future__ import annotations

import collections
import random
import time
from pathlib import Path

import numpy as np
import pytest
from fuzz_inputs import DICOM_KINDS, Mutation, fuzz_dicom_copies, nifti_bytes, nifti_mutants

from app.errors import InputError
from app.loading import ReadOptions, discover_inputs, load_volume
from app.loading.dicom.fileformat import has_dicom_preamble
from app.volume import Volume

#: small real series: explicit VR (28 x 64 x 4, rescaled to float32), implicit VR (64 x 64 x 4), JPEG Lossless
#: (256 x 256 x 4) and one enhanced multi-frame MR file (Hyperfine)
SERIES = (
    "dicom2nifti-suite/generic/anatomical/002_non_isotropic",
    "dicom2nifti-suite/hitachi/anatomical/001_implicit",
    "dicom2nifti-suite/generic/compressed_jpeg/001",
    "dicom2nifti-suite/hyperfine/anatomical/001",
)
#: a slice of the result is "the same place" as a reference slice within this (mm); a flipped last digit of a
#: position stays within the reader's own 1 % tolerance
PLACE_TOLERANCE_MM = 0.05


def judge_copy(folder: Path, mutation: Mutation, reference: Volume) -> tuple[str, list[str]]:
    """Run discovery and load on one copy; return ``(outcome, problems)`` (no problems: the contract holds)."""
    problems: list[str] = []
    try:
        cases, decisions = discover_inputs([folder])
    except Exception as exc:  # noqa: BLE001 - the test reports any escape as a contract violation
        return "discovery raised", [f"discovery raised {type(exc).__name__}: {exc}"]
    dicom_files = {p for p in folder.iterdir() if has_dicom_preamble(p)}
    in_cases = {h.path for c in cases if c.series for h in c.series.instances}
    skipped = {Path(d.path) for d in decisions if d.subject == "file" and d.action == "skipped"}
    skipped_series = [Path(d.path) for d in decisions if d.subject == "series" and d.action == "skipped"]
    for path in sorted(dicom_files - in_cases - skipped):
        if not any(folder_ == path.parent for folder_ in skipped_series):
            problems.append(f"{path.name} is in no case and in no decision")
    for d in decisions:
        if d.action == "skipped" and d.subject == "file" and not d.reason:
            problems.append(f"skipped {d.path} without a reason")
    names = {p.name for p in folder.iterdir()}
    outcomes = []
    for case in cases:
        try:
            volume = case.load()
        except InputError as exc:
            outcomes.append("refused")
            if not any(name in str(exc) for name in names):
                problems.append(f"refusal names no file: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - contract violation, reported
            problems.append(f"load raised {type(exc).__name__}: {exc}")
            continue
        outcomes.append("volume")
        problems.extend(_volume_problems(volume, mutation, reference))
    if not cases:
        outcomes.append("no case")
    return "+".join(outcomes), problems


def _volume_problems(volume: Volume, mutation: Mutation, reference: Volume) -> list[str]:
    """A volume must be the reference, or (when the mutation may drop slices or change values) part of it."""
    if mutation.same_volume:
        if volume.shape != reference.shape or not np.allclose(volume.affine, reference.affine, atol=1e-4):
            return [f"volume {volume.shape} differs in geometry from the original {reference.shape}"]
        if not np.array_equal(volume.array, reference.array):
            return ["volume differs in voxels from the original"]
        return []
    if volume.ndim != 3 or volume.shape[:2] != reference.shape[:2]:
        return [f"volume of shape {volume.shape} is not on the original's {reference.shape} grid"]
    if not np.allclose(volume.affine[:3, :2], reference.affine[:3, :2], atol=1e-2):
        return ["in-plane axes differ from the original"]
    ref_origins = reference.world_coordinates([[0, 0, k] for k in range(reference.shape[2])])
    problems = []
    for k in range(volume.shape[2]):
        origin = volume.world_coordinates([[0, 0, k]])[0]
        distances = np.linalg.norm(ref_origins - origin, axis=1)
        match = int(np.argmin(distances))
        if distances[match] > PLACE_TOLERANCE_MM:
            problems.append(f"slice {k} at {origin} is not where any original slice is")
        elif mutation.same_pixels and not np.array_equal(
            volume.array[..., k].astype(np.float64), reference.array[..., match].astype(np.float64)
        ):
            problems.append(f"slice {k} has other voxels than the original slice {match}")
    return problems


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about every odd value it reads
@pytest.mark.parametrize("series", SERIES)
def test_fuzzed_dicom_series_end_as_volume_or_input_error(
    series: str, shared_data: Path, tmp_path: Path
) -> None:
    source = shared_data / series
    reference = load_volume(source)
    started = time.perf_counter()
    copies = fuzz_dicom_copies(source, tmp_path / "fuzz", n=40, seed=15)
    report = collections.Counter()
    failures = []
    for folder, mutation in copies:
        outcome, problems = judge_copy(folder, mutation, reference)
        report[(mutation.kind, outcome)] += 1
        failures.extend(f"{folder.name} {mutation}: {p}" for p in problems)
    assert not failures, "\n".join(failures)
    kinds = {kind for kind, _ in report}
    assert kinds == set(DICOM_KINDS)
    outcomes = collections.Counter(outcome for _, outcome in report.elements())
    assert outcomes["volume"] and outcomes["refused"], report  # both branches are exercised
    assert time.perf_counter() - started < 60


#: more series for the slow run: JPEG 2000, JPEG-LS, RLE, two enhanced multi-frame files
MORE_SERIES = (
    "dicom2nifti-suite/generic/compressed_j2k/001",
    "dicom2nifti-suite/generic/compressed_jpegls/001",
    "dicom2nifti-suite/generic/compressed_rle/001",
    "dicom2nifti-suite/siemens_multiframe/anatomical/001",
    "dicom2nifti-suite/philips_enhanced/anatomical/001",
)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("seed", range(5))
def test_fuzzed_dicom_series_many_seeds(seed: int, shared_data: Path, tmp_path: Path) -> None:
    """400 copies of each of 9 series per seed: 18,000 copies in all, about 4 CPU minutes."""
    for series in SERIES + MORE_SERIES:
        source = shared_data / series
        reference = load_volume(source)
        copies = fuzz_dicom_copies(source, tmp_path / series.replace("/", "_"), n=400, seed=seed)
        failures = [
            f"{folder.name} {mutation}: {p}"
            for folder, mutation in copies
            for p in judge_copy(folder, mutation, reference)[1]
        ]
        assert not failures, "\n".join(failures)


# --- NIfTI ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nifti_cases(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Mutation]]:
    import nibabel as nib

    image = nib.load(shared_data / "msd-hippocampus" / "imagesTr" / "hippocampus_001.nii.gz")
    good = nifti_bytes(np.asanyarray(image.dataobj), image.affine)
    return nifti_mutants(good, tmp_path_factory.mktemp("nifti"), random.Random(15))


def test_nifti_allocation_bomb_is_refused_from_the_header(nifti_cases) -> None:
    path, _ = nifti_cases["bomb"]
    assert path.stat().st_size == 352
    started = time.perf_counter()
    with pytest.raises(InputError) as error:
        load_volume(path)
    assert time.perf_counter() - started < 1
    assert error.value.path == path
    assert error.value.reason.startswith(
        "declared size 4000x4000x4000 voxels x 4 bytes = 244141 MiB exceeds the limit of 4096 MiB"
    )


def test_nifti_gzip_bomb_inflates_only_the_header(nifti_cases) -> None:
    path, _ = nifti_cases["gzip_bomb"]
    with pytest.raises(InputError, match="declared size 4000x4000x4000 voxels"):
        load_volume(path)


def test_truncated_nifti_gz_is_refused_as_truncated(nifti_cases) -> None:
    path, _ = nifti_cases["truncated_gz"]
    with pytest.raises(InputError, match="truncated or corrupt") as error:
        load_volume(path)
    assert error.value.path == path


def test_nifti_with_more_data_than_declared_reads_the_declared_voxels(nifti_cases, shared_data: Path) -> None:
    path, _ = nifti_cases["longer_gz"]
    volume = load_volume(path)
    original = load_volume(shared_data / "msd-hippocampus" / "imagesTr" / "hippocampus_001.nii.gz")
    np.testing.assert_array_equal(volume.array, original.array)


def test_nifti_garbage_header_is_refused_or_read(nifti_cases) -> None:
    path, _ = nifti_cases["garbage_header"]
    try:
        volume = load_volume(path)
    except InputError as exc:
        assert path.name in str(exc)
    else:
        assert volume.ndim in (2, 3)


def test_nifti_random_header_bytes_only_input_error(shared_data: Path, tmp_path: Path) -> None:
    """Many NIfTI headers with random bytes: each is read or refused with InputError, nothing else."""
    import nibabel as nib

    image = nib.load(shared_data / "msd-hippocampus" / "imagesTr" / "hippocampus_001.nii.gz")
    good = nifti_bytes(np.asanyarray(image.dataobj), image.affine)
    outcomes = collections.Counter()
    for seed in range(60):
        mutants = nifti_mutants(good, tmp_path / str(seed), random.Random(seed), kinds=("garbage_header",))
        path, _ = mutants["garbage_header"]
        try:
            load_volume(path, options=ReadOptions(max_bytes=2**26))
            outcomes["volume"] += 1
        except InputError as exc:
            assert path.name in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def test_nifti_qform_sform_mismatch_is_followed_by_sform_with_a_warning(nifti_cases, caplog) -> None:
    path, _ = nifti_cases["qform_sform"]
    with caplog.at_level("WARNING", logger="app.loading.nifti"):
        volume = load_volume(path)
    import nibabel as nib

    np.testing.assert_allclose(volume.affine, nib.load(path).header.get_sform(), atol=1e-5)
    (warning,) = volume.warnings
    assert warning.startswith("qform and sform disagree: they place voxels up to 20 mm apart")
    assert "unetseg follows the sform" in warning and "qform" in warning and "3D Slicer" in warning
    assert warning in caplog.text
    assert volume.with_array(volume.array > 0).warnings == (warning,)  # the label made from it keeps it
    with pytest.raises(InputError, match="strict orientation is on") as error:
        load_volume(path, options=ReadOptions(strict_orientation=True))
    assert "fslorient -copysform2qform" in error.value.reason
