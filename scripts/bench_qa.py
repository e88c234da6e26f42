"""What the per-case statistics, flags and preview (:func:`app.batch.case_qa.describe_case`) add to a case's time.

Issue 19's budget: at most 10% of a hippocampus case's time, at most 5% of a real-sized volume's. For each
volume the case is run as ``unetseg infer`` runs it (load, the bundle's inference, NIfTI written), with the
shipped hippocampus bundle, backend and threads as ``infer`` picks them, then the QA steps are timed
alone (the input's check against the training ranges, statistics + flags + ``statistics.json``, and the
preview). Medians of ``--repeat`` runs after one warm-up (the CT case itself: one run after its warm-up).

* ``hippocampus``: a demo MR crop (the bundle's own kind of input);
* ``ct-512``: the 20-slice 512 x 512 CT series of ``totalseg-ct`` (DICOM, JPEG 2000), run through the same
  bundle for its cost (what it segments on a CT is beside the point) and described twice: with the labels
  the bundle made, and with a dense label map of every voxel above 150 HU (bone: hundreds of components over the
  whole volume, the statistics' worst case).

    python scripts/bench_qa.py [--repeat 3] [--threads N]

Do not run it while ``/tmp/BENCH_RUNNING`` exists (another benchmark owns the machine).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from app.batch.case_qa import describe_case, input_warnings
from app.inference.bundle import load_bundle
from app.inference.options import InferenceOptions
from app.inference.predict import segment
from app.loading.load import load_volume
from app.writing.nifti import write_nifti

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "hippocampus_mri_segmentation"
HIPPO = ROOT / "app" / "demo" / "data" / "hippocampus" / "images" / "hippocampus_035.nii.gz"
CT = ROOT.parent / "shared" / "data" / "totalseg-ct" / "example_ct_dicom"


def _median_time(fn, repeat: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    bundle = load_bundle(
        BUNDLE,
        InferenceOptions(
            device="cpu", backend="auto", skip_empty=True, resample_float32=True, num_threads=args.threads
        ),
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, path, modality in (("hippocampus", HIPPO, "MR"), ("ct-512", CT, "CT")):

            def run_case(path=path, name=name):
                volume = load_volume(path)
                labels = segment(bundle, volume, work, name=name)
                write_nifti(labels, work / f"{name}_seg.nii.gz")
                return volume, labels

            # the 80-second CT case once (after its warm-up): the share is far under budget either way
            case_s, (volume, labels) = _median_time(run_case, args.repeat if modality == "MR" else 1)
            maps = [("bundle labels", labels)]
            if modality == "CT":
                dense = (np.asarray(volume.array) > 150).astype(np.uint8)
                maps.append(("every voxel > 150 HU as label 1", labels.with_array(dense)))
            for what, label_map in maps:
                for preview in (False, True):
                    describe = functools.partial(
                        describe_case,
                        name,
                        volume,
                        label_map,
                        bundle.info,
                        work,
                        modality=modality,
                        picture=False,
                        preview=preview,
                    )

                    def qa(describe=describe, volume=volume):
                        input_warnings(bundle.info, volume)  # run_case's input check against the ranges
                        return describe()

                    qa_s, _ = _median_time(qa, args.repeat)
                    rows.append((name, "x".join(map(str, volume.shape)), what, preview, case_s, qa_s))
    print(f"bundle {bundle.info.name} {bundle.info.version}, runtime {bundle.runtime}, repeat {args.repeat}")
    print(
        f"{'case':<12} {'shape':<12} {'labels':<32} {'preview':<8} {'case s':>8} {'qa s':>8} {'qa/case':>8}"
    )
    for name, shape, what, preview, case_s, qa_s in rows:
        print(
            f"{name:<12} {shape:<12} {what:<32} {'yes' if preview else 'no':<8} {case_s:>8.3f} {qa_s:>8.3f} "
            f"{100 * qa_s / case_s:>7.1f}%"
        )


if __name__ == "__main__":
    main()
