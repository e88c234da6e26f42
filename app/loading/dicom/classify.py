"""Which DICOM instances are images the segmentation app can use, decided from the header alone.

Each function returns ``None`` when the instance is usable, else a short reason for the decision records.
"""

from __future__ import annotations

from app.loading.dicom.header import InstanceHeader

#: SOP classes that hold no image volume (or an image we must not segment), by UID -> short name
NON_IMAGE_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.1.3.10": "DICOMDIR (Media Storage Directory)",
    "1.2.840.10008.5.1.4.1.1.66": "Raw Data",
    "1.2.840.10008.5.1.4.1.1.66.1": "Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.66.2": "Spatial Fiducials",
    "1.2.840.10008.5.1.4.1.1.66.3": "Deformable Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.66.5": "Surface Segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.67": "Real World Value Mapping",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.104.2": "Encapsulated CDA",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set (RTSTRUCT)",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan",
    "1.2.840.10008.5.1.4.1.1.30": "Parametric Map",
}

#: SOP class UID prefixes of whole families without image volumes
NON_IMAGE_SOP_PREFIXES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.11.": "Presentation State (PR)",
    "1.2.840.10008.5.1.4.1.1.88.": "Structured Report (SR/KO)",
    "1.2.840.10008.5.1.4.1.1.9.": "Waveform",
    "1.2.840.10008.5.1.4.1.1.481.": "Radiotherapy object",
}

#: modalities of objects that are not images
NON_IMAGE_MODALITIES: frozenset[str] = frozenset(
    {
        "SEG",
        "RTSTRUCT",
        "RTPLAN",
        "RTDOSE",
        "RTRECORD",
        "RTIMAGE",
        "SR",
        "PR",
        "KO",
        "REG",
        "FID",
        "RWV",
        "DOC",
        "PLAN",
        "ECG",
        "AU",
        "HD",
        "RESP",
    }
)


def non_image_reason(header: InstanceHeader) -> str | None:
    """Why ``header`` is not an image object (SEG, RTSTRUCT, SR, PR, KO, ...), or ``None`` if it is one."""
    reason = non_image_object_reason(header)
    if reason is None and (not header.rows or not header.columns):
        return "not an image: no Rows/Columns"
    return reason


def non_image_object_reason(header: InstanceHeader) -> str | None:
    """Why ``header`` is a non-image object by its SOP Class UID or Modality, or ``None``: the part of
    :func:`non_image_reason` that a file cut before its Rows/Columns still tells (its SOP class is in the file
    meta, at its start)."""
    uid = header.sop_class_uid
    if uid in NON_IMAGE_SOP_CLASSES:
        return f"not an image: {NON_IMAGE_SOP_CLASSES[uid]}, SOP Class {uid}"
    for prefix, name in NON_IMAGE_SOP_PREFIXES.items():
        if uid.startswith(prefix):
            return f"not an image: {name}, SOP Class {uid}"
    if header.modality in NON_IMAGE_MODALITIES:
        return f"not an image: Modality {header.modality}"
    return None


def unsupported_image_reason(header: InstanceHeader) -> str | None:
    """Why the image ``header`` cannot be segmented (colour, mosaic, bit-packed), or ``None``."""
    if header.samples_per_pixel != 1 or not header.photometric_interpretation.startswith("MONOCHROME"):
        return (
            f"colour image (PhotometricInterpretation {header.photometric_interpretation or '?'}, "
            f"SamplesPerPixel {header.samples_per_pixel}) is not supported for segmentation; "
            "only greyscale MONOCHROME1/2 images are"
        )
    if "MOSAIC" in header.image_type:
        return "Siemens MOSAIC image (several slices tiled in one frame) is not supported; convert it with dcm2niix"
    if header.bits_allocated not in (8, 16, 32):
        return f"BitsAllocated {header.bits_allocated} is not supported (expected 8, 16 or 32)"
    return None


def is_localizer(header: InstanceHeader) -> bool:
    """True when ImageType says LOCALIZER (scout/topogram images)."""
    return "LOCALIZER" in header.image_type


def invalid_pixel_format_reason(header: InstanceHeader) -> str | None:
    """Why the pixel format attributes of ``header`` contradict each other (a corrupt header), or ``None``."""
    allocated, stored = header.bits_allocated or 0, header.bits_stored
    if stored is not None and not 1 <= stored <= allocated:
        return f"BitsStored {stored} is outside 1..BitsAllocated ({allocated}): the header is corrupt"
    if header.pixel_representation not in (0, 1):
        return f"PixelRepresentation {header.pixel_representation} is neither 0 (unsigned) nor 1 (signed)"
    return None
