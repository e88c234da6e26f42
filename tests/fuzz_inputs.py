"""Seeded corruption of real DICOM series and NIfTI files, for fuzz tests of the loader and the batch.

Each copy of a series gets exactly ONE mutation of ONE file, of these kinds (:data:`DICOM_KINDS`):

* ``delete``: a tag the reader needs (Rows, PixelSpacing, ImagePositionPatient, PixelData, ...) removed;
* ``value``: a tag given an absurd value, written as raw bytes so nothing validates it on the way
  (Rows 0, PixelSpacing negative/NaN/text, ImagePositionPatient garbage, BitsAllocated 7, NumberOfFrames huge,
  RescaleSlope NaN, ...);
* ``truncate``: the file cut at a random byte after the preamble (header or pixel data);
* ``bitflip``: 1-8 random bits flipped in the header region (after ``DICM``, before Pixel Data);
* ``bytes``: a run of 1-16 header bytes overwritten with random bytes;
* ``duplicate_position``: the file given another file's ImagePositionPatient;
* ``transfer_syntax``: the file meta's TransferSyntaxUID replaced by one that lies (JPEG, JPEG 2000, RLE,
  deflate, big endian, implicit for explicit and the reverse, an unknown UID), the dataset bytes untouched;
* ``control``: changes that must not change the volume (InstanceNumber rewritten, SeriesDescription deleted, an
  identical copy of a file added), so a test also sees the "correct volume" branch.

The preamble and ``DICM`` are never touched: a file that no longer looks like DICOM is ignored by discovery by
design, which is not what these tests are about. Pure functions of ``(source, destination, rng)``: the same seed
gives the same copies. NIfTI failure classes: :func:`nifti_mutants`.

Any test module can import it (``tests/`` is on ``sys.path`` through the root conftest, pytest's default
``prepend`` import mode)::

    from fuzz_inputs import fuzz_dicom_copies
    copies = fuzz_dicom_copies(series_folder, tmp_path / "fuzz", n=40, seed=0)   # [(folder, Mutation), ...]
"""

from __future__ import annotations

import gzip
import io
import random
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import Tag

_PREAMBLE = 132
_PIXEL_DATA_LE = struct.pack("<HH", 0x7FE0, 0x0010)


@dataclass(frozen=True)
class Mutation:
    """What was done to one copy.

    Attributes:
        kind: one of :data:`DICOM_KINDS` (or a NIfTI kind, see :func:`nifti_mutants`).
        file: name of the mutated (or added) file inside the copy.
        detail: what exactly, for test messages (e.g. ``"Rows = b'\\x00\\x00'"``).
        same_volume: the mutation cannot change geometry or voxel values, so a Volume read from the copy must
            equal the one read from the original.
        same_pixels: voxel values cannot change (geometry may, e.g. a slice whose header was lost).
    """

    kind: str
    file: str
    detail: str
    same_volume: bool = False
    same_pixels: bool = True


#: tags whose loss the reader must notice (or survive)
DELETABLE = (
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PixelData",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "SOPClassUID",
    "SliceThickness",
    "RescaleSlope",
)

#: (keyword, raw value) pairs; numbers of VR US are packed little endian by :func:`_raw_value`
ABSURD_VALUES: tuple[tuple[str, str | int], ...] = (
    ("Rows", 0),
    ("Rows", 65535),
    ("Columns", 0),
    ("Columns", 1),
    ("PixelSpacing", "-1\\-1"),
    ("PixelSpacing", "nan\\nan"),
    ("PixelSpacing", "0\\0"),
    ("PixelSpacing", "abc"),
    ("PixelSpacing", "1e309\\1"),
    ("ImagePositionPatient", "garbage"),
    ("ImagePositionPatient", "1\\2"),
    ("ImagePositionPatient", "inf\\0\\0"),
    ("ImagePositionPatient", "1e308\\1e308\\1e308"),
    ("ImageOrientationPatient", "0\\0\\0\\0\\0\\0"),
    ("ImageOrientationPatient", "1\\0\\0\\1\\0\\0"),
    ("ImageOrientationPatient", "x"),
    ("BitsAllocated", 7),
    ("BitsAllocated", 64),
    ("BitsAllocated", 0),
    ("BitsAllocated", 1),
    ("BitsStored", 0),
    ("BitsStored", 40),
    ("PixelRepresentation", 7),
    ("SamplesPerPixel", 0),
    ("SamplesPerPixel", 3),
    ("NumberOfFrames", "2147483647"),
    ("NumberOfFrames", "0"),
    ("NumberOfFrames", "-1"),
    ("NumberOfFrames", "abc"),
    ("NumberOfFrames", "4"),
    ("RescaleSlope", "nan"),
    ("RescaleSlope", "0"),
    ("RescaleSlope", "abc"),
    ("RescaleSlope", "1e309"),
    ("RescaleIntercept", "inf"),
    ("PhotometricInterpretation", "PALETTE COLOR"),
    ("PhotometricInterpretation", "YBR_FULL"),
    ("SpacingBetweenSlices", "-5"),
    ("SliceThickness", "nan"),
)

#: transfer syntaxes that lie about uncompressed little-endian data
LYING_SYNTAXES = (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.840.10008.1.2.1.99",  # Deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # Explicit VR big endian
    "1.2.3.4.5.6.7",  # not a transfer syntax
    "swap",  # implicit <-> explicit VR little endian
)


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def _pixel_data_offset(data: bytes) -> int:
    """Offset of the (little-endian) Pixel Data tag, or the file length if it has none."""
    offset = data.rfind(_PIXEL_DATA_LE)
    return offset if offset > _PREAMBLE else len(data)


def _raw_value(keyword: str, value: str | int) -> tuple[str, bytes]:
    vr = dictionary_VR(Tag(keyword))
    if isinstance(value, int):
        return vr, struct.pack("<H", value)
    raw = value.encode("ascii")
    return vr, raw + (b" " if len(raw) % 2 else b"")


def set_raw_value(path: Path, keyword: str, value: str | int) -> None:
    """Give ``keyword`` in the DICOM file ``path`` the raw ``value`` (text, or an int packed as US), unvalidated."""
    ds = pydicom.dcmread(path)
    vr, raw = _raw_value(keyword, value)
    tag = Tag(keyword)
    ds[tag] = RawDataElement(tag, vr, len(raw), raw, 0, ds.original_encoding[0], True)
    ds.save_as(path)


def _delete(path: Path, keyword: str) -> bool:
    ds = pydicom.dcmread(path)
    if keyword not in ds:
        return False
    del ds[keyword]
    ds.save_as(path)
    return True


def replace_transfer_syntax(path: Path, uid: str) -> str:
    """Rewrite the file meta with TransferSyntaxUID ``uid`` (``"swap"``: implicit <-> explicit); dataset bytes as is."""
    data = path.read_bytes()
    with open(path, "rb") as fh:
        read_preamble(fh, False)
        meta = _read_file_meta_info(fh)
        start = fh.tell()
    if uid == "swap":
        uid = "1.2.840.10008.1.2.1" if meta.TransferSyntaxUID == "1.2.840.10008.1.2" else "1.2.840.10008.1.2"
    meta.TransferSyntaxUID = uid
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    path.write_bytes(data[:_PREAMBLE] + buffer.getvalue() + data[start:])
    return uid


def _mutate_delete(folder: Path, rng: random.Random) -> Mutation:
    files = _dicom_files(folder)
    for _ in range(20):
        path, keyword = rng.choice(files), rng.choice(DELETABLE)
        if _delete(path, keyword):
            return Mutation("delete", path.name, f"{keyword} deleted", same_pixels=keyword != "RescaleSlope")
    raise AssertionError(f"{folder}: none of the deletable tags is present")


def _mutate_value(folder: Path, rng: random.Random) -> Mutation:
    path = rng.choice(_dicom_files(folder))
    keyword, value = rng.choice(ABSURD_VALUES)
    set_raw_value(path, keyword, value)
    return Mutation(
        "value", path.name, f"{keyword} = {value!r}", same_pixels=not keyword.startswith("Rescale")
    )


def _mutate_truncate(folder: Path, rng: random.Random) -> Mutation:
    path = rng.choice(_dicom_files(folder))
    data = path.read_bytes()
    cut = rng.randrange(_PREAMBLE + 8, len(data))
    path.write_bytes(data[:cut])
    return Mutation("truncate", path.name, f"cut to {cut} of {len(data)} bytes")


def _mutate_bitflip(folder: Path, rng: random.Random) -> Mutation:
    path = rng.choice(_dicom_files(folder))
    data = bytearray(path.read_bytes())
    end = _pixel_data_offset(bytes(data))
    bits = sorted(rng.randrange(_PREAMBLE * 8, end * 8) for _ in range(rng.randint(1, 8)))
    for bit in bits:
        data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))
    return Mutation("bitflip", path.name, f"bits {bits} flipped", same_pixels=False)


def _mutate_bytes(folder: Path, rng: random.Random) -> Mutation:
    path = rng.choice(_dicom_files(folder))
    data = bytearray(path.read_bytes())
    end = _pixel_data_offset(bytes(data))
    n = rng.randint(1, 16)
    start = rng.randrange(_PREAMBLE, max(_PREAMBLE + 1, end - n))
    data[start : start + n] = bytes(rng.randrange(256) for _ in range(n))
    path.write_bytes(bytes(data))
    return Mutation("bytes", path.name, f"{n} bytes at {start} randomised", same_pixels=False)


def _mutate_duplicate_position(folder: Path, rng: random.Random) -> Mutation:
    files = _dicom_files(folder)
    if len(files) == 1:  # one multi-frame file: a frame gets another frame's PlanePosition
        ds = pydicom.dcmread(files[0])
        frames = ds.PerFrameFunctionalGroupsSequence
        target, source = rng.sample(range(len(frames)), 2)
        position = frames[source].PlanePositionSequence[0].ImagePositionPatient
        frames[target].PlanePositionSequence[0].ImagePositionPatient = position
        ds.save_as(files[0])
        return Mutation(
            "duplicate_position", files[0].name, f"frame {target + 1} at frame {source + 1}'s position"
        )
    target, source = rng.sample(files, 2)
    position = pydicom.dcmread(source, stop_before_pixels=True).ImagePositionPatient
    ds = pydicom.dcmread(target)
    ds.ImagePositionPatient = position
    ds.save_as(target)
    return Mutation("duplicate_position", target.name, f"ImagePositionPatient of {source.name}")


def _mutate_transfer_syntax(folder: Path, rng: random.Random) -> Mutation:
    path = rng.choice(_dicom_files(folder))
    uid = replace_transfer_syntax(path, rng.choice(LYING_SYNTAXES))
    return Mutation("transfer_syntax", path.name, f"TransferSyntaxUID {uid}", same_pixels=False)


def _mutate_control(folder: Path, rng: random.Random) -> Mutation:
    files = _dicom_files(folder)
    path = rng.choice(files)
    choice = rng.randrange(3)
    if choice == 0:
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = rng.randint(1, 9999)
        ds.save_as(path)
        return Mutation("control", path.name, "InstanceNumber rewritten", same_volume=True)
    if choice == 1 and _delete(path, "SeriesDescription"):
        return Mutation("control", path.name, "SeriesDescription deleted", same_volume=True)
    copy = path.with_name(f"copy_of_{path.name}")
    shutil.copyfile(path, copy)
    return Mutation("control", copy.name, f"identical copy of {path.name}", same_volume=True)


#: mutation kind -> function(folder, rng) that mutates one file of the series copy in ``folder``
DICOM_KINDS: dict[str, Callable[[Path, random.Random], Mutation]] = {
    "delete": _mutate_delete,
    "value": _mutate_value,
    "truncate": _mutate_truncate,
    "bitflip": _mutate_bitflip,
    "bytes": _mutate_bytes,
    "duplicate_position": _mutate_duplicate_position,
    "transfer_syntax": _mutate_transfer_syntax,
    "control": _mutate_control,
}


def mutate_dicom_series(source: Path, destination: Path, rng: random.Random, kind: str) -> Mutation:
    """Copy the series folder ``source`` to ``destination`` and apply one mutation of ``kind`` to one file."""
    shutil.copytree(source, destination)
    destination.chmod(0o755)  # the shared data are read-only
    for path in destination.iterdir():
        path.chmod(0o644)
    return DICOM_KINDS[kind](destination, rng)


def fuzz_dicom_copies(
    source: Path, destination: Path, n: int, seed: int = 0, kinds: tuple[str, ...] = tuple(DICOM_KINDS)
) -> list[tuple[Path, Mutation]]:
    """``n`` mutated copies of the series folder ``source`` as ``destination/copy_000``, ``copy_001``, ...

    Kinds cycle through ``kinds`` (so every kind occurs once ``n >= len(kinds)``); which file, tag, value, bit
    or byte is drawn from ``random.Random(seed)``. Returns ``[(copy folder, mutation), ...]``.
    """
    rng = random.Random(seed)
    destination.mkdir(parents=True, exist_ok=True)
    copies = []
    for i in range(n):
        folder = destination / f"copy_{i:03d}"
        copies.append((folder, mutate_dicom_series(source, folder, rng, kinds[i % len(kinds)])))
    return copies


# --- NIfTI ---------------------------------------------------------------------------------------------------


def nifti_bytes(
    array: np.ndarray, affine: np.ndarray | None = None, *, qform: np.ndarray | None = None
) -> bytes:
    """An uncompressed NIfTI-1 file of ``array``: sform ``affine`` (code 1), qform ``qform`` (default: same)."""
    import nibabel as nib

    affine = np.eye(4) if affine is None else affine
    image = nib.Nifti1Image(array, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine if qform is None else qform, code=1)
    buffer = io.BytesIO()
    file_map = nib.Nifti1Image.make_file_map({"image": buffer, "header": buffer})
    image.to_file_map(file_map)
    return buffer.getvalue()


def _nifti_bomb(good: bytes, path: Path, rng: random.Random) -> str:
    import nibabel as nib

    bomb = nib.Nifti1Header()
    bomb.set_data_dtype(np.float32)
    bomb.set_data_shape((4000, 4000, 4000))
    bomb["vox_offset"] = 352
    path.write_bytes(bomb.binaryblock + b"\0" * 4)
    return "4000^3 float32 declared in a 352-byte file"


def _nifti_truncated_gz(good: bytes, path: Path, rng: random.Random) -> str:
    compressed = gzip.compress(good)
    cut = rng.randrange(len(compressed) // 2, len(compressed) - 8)
    path.write_bytes(compressed[:cut])
    return f"gzip stream cut to {cut} of {len(compressed)} bytes"


def _nifti_longer_gz(good: bytes, path: Path, rng: random.Random) -> str:
    import nibabel as nib

    offset = int(nib.Nifti1Header.from_fileobj(io.BytesIO(good))["vox_offset"])
    path.write_bytes(gzip.compress(good + good[offset:]))
    return "data twice as long as declared"


def _nifti_gzip_bomb(good: bytes, path: Path, rng: random.Random) -> str:
    _nifti_bomb(good, path, rng)
    header = path.read_bytes()
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(header)
        zeros = bytes(2**20)
        for _ in range(64):  # 64 MiB of zeros in ~64 KiB on disk; the header declares 244 GiB
            fh.write(zeros)
    return "4000^3 float32 declared over a gzip stream of zeros"


def _nifti_garbage_header(good: bytes, path: Path, rng: random.Random) -> str:
    data = bytearray(good)
    where = sorted(rng.randrange(4, 348) for _ in range(rng.randint(4, 32)))
    for offset in where:
        data[offset] = rng.randrange(256)
    path.write_bytes(bytes(data))
    return f"random bytes at header offsets {where}"


def _nifti_qform_sform(good: bytes, path: Path, rng: random.Random) -> str:
    import nibabel as nib

    image = nib.Nifti1Image.from_bytes(good)
    qform = image.affine.copy()
    qform[:3, 3] += (20.0, 0.0, 0.0)
    path.write_bytes(nifti_bytes(np.asanyarray(image.dataobj), image.affine, qform=qform))
    return "qform 20 mm right of the sform"


#: NIfTI failure class -> (file name, function(good file bytes, path, rng) writing the mutant, whether the voxels
#: can stay those of the good file)
NIFTI_KINDS: dict[str, tuple[str, Callable[[bytes, Path, random.Random], str], bool]] = {
    "bomb": ("bomb.nii", _nifti_bomb, True),
    "truncated_gz": ("truncated.nii.gz", _nifti_truncated_gz, True),
    "longer_gz": ("longer.nii.gz", _nifti_longer_gz, True),
    "gzip_bomb": ("gzip_bomb.nii.gz", _nifti_gzip_bomb, True),
    "garbage_header": ("garbage_header.nii", _nifti_garbage_header, False),
    "qform_sform": ("qform_sform.nii", _nifti_qform_sform, True),
}


def nifti_mutants(
    good: bytes, destination: Path, rng: random.Random, kinds: tuple[str, ...] = tuple(NIFTI_KINDS)
) -> dict[str, tuple[Path, Mutation]]:
    """NIfTI failure classes made from the uncompressed NIfTI-1 file ``good`` (see :data:`NIFTI_KINDS`):

    ``bomb`` (dims 4000^3 float32 in a 352-byte file), ``truncated_gz`` (a .nii.gz cut in its data),
    ``longer_gz`` (a .nii.gz with twice the declared data), ``gzip_bomb`` (dims 4000^3 float32 over 64 MiB of
    gzipped zeros), ``garbage_header`` (4-32 random bytes after sizeof_hdr), ``qform_sform`` (qform 20 mm from
    the sform). Returns ``{kind: (path, mutation)}``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind in kinds:
        name, write, same_pixels = NIFTI_KINDS[kind]
        path = destination / name
        detail = write(good, path, rng)
        out[kind] = (path, Mutation(kind, name, detail, same_pixels=same_pixels))
    return out
