"""The label map of a NIfTI case carries the case's own geometry fields (app.writing.nifti, ``like``), so the two
overlay in ITK-based viewers too, whatever orientation fields the input had."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from app.batch import BatchConfig, run_batch


@pytest.mark.parametrize(("sform_code", "qform_code"), [(0, 0), (4, 0)])
def test_a_nifti_case_label_has_the_inputs_orientation_fields(
    toy_bundle, demo_data, tmp_path, sform_code, qform_code
):
    import SimpleITK as sitk

    real = nib.load(sorted((demo_data / "hippocampus" / "images").glob("*.nii.gz"))[0])
    image = nib.Nifti1Image(np.asanyarray(real.dataobj), real.affine)
    image.set_sform(real.affine, code=sform_code)
    image.set_qform(real.affine, code=qform_code)
    inputs = tmp_path / "in"
    inputs.mkdir()
    nib.save(image, inputs / "case.nii.gz")
    result = run_batch(BatchConfig(inputs=(inputs,), bundle=toy_bundle, out=tmp_path / "out", device="cpu"))
    (record,) = result.records
    assert record.status == "ok", record.reason
    label = tmp_path / "out" / "case" / "case_seg.nii.gz"
    header = nib.load(label).header
    assert (int(header["sform_code"]), int(header["qform_code"])) == (sform_code, qform_code)
    itk_image, itk_label = sitk.ReadImage(str(inputs / "case.nii.gz")), sitk.ReadImage(str(label))
    assert itk_label.GetSize() == itk_image.GetSize()
    np.testing.assert_allclose(itk_label.GetOrigin(), itk_image.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(itk_label.GetDirection(), itk_image.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(itk_label.GetSpacing(), itk_image.GetSpacing(), atol=1e-6)
