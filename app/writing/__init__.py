"""writing stage: Volume / label map -> files, always written atomically.

Modules (import them directly; this package imports nothing heavy):

* :mod:`app.writing.atomic`: ``atomic_write(path)``, temporary file beside the target, fsync, ``os.replace``.
* :mod:`app.writing.nifti`: ``write_nifti(volume, path)``, NIfTI-1 in RAS with sform/qform set.
* :mod:`app.writing.dicom_seg`: ``write_dicom_seg(labels, source, segments, path)``, DICOM SEG via highdicom.
* the coded concepts of a channel name (``SegmentSpec``) are shared vocabulary: :mod:`app.segment_codes`
  (bundle metadata reads them too).
* :mod:`app.writing.source_grid`: which source frame each label slice lies on, checked geometrically.

The reverse direction for SEG (reading a SEG back into a label Volume) is :mod:`app.loading.seg`.
"""
