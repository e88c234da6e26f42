"""loading/dicom stage."""
