"""Channel names -> coded concepts: only codes that exist in pydicom's dictionaries, documented fallback."""

from __future__ import annotations

import pytest
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr.codedict import codes

from app.segment_codes import SegmentSpec, known_segments, resolve_segment, resolve_segments


def _sct(code) -> tuple[str, str]:
    return code.scheme_designator, code.value


def test_hippocampus_channels_with_context():
    anterior = resolve_segment("anterior", context="hippocampus")
    posterior = resolve_segment("Posterior", context="hippocampus")
    assert anterior.label == "anterior" and posterior.label == "Posterior"
    assert _sct(anterior.property_category) == ("SCT", "91723000")  # Anatomical Structure
    assert _sct(anterior.property_type) == ("SCT", "5366008")  # Hippocampus
    assert _sct(anterior.property_type_modifier) == ("SCT", "255549009")  # Anterior
    assert _sct(posterior.property_type_modifier) == ("SCT", "255551008")  # Posterior
    assert resolve_segment("anterior_hippocampus").property_type_modifier == anterior.property_type_modifier


def test_without_context_a_direction_is_not_anatomy():
    spec = resolve_segment("anterior")
    assert _sct(spec.property_category) == ("SCT", "85756007") and _sct(spec.property_type) == (
        "SCT",
        "85756007",
    )
    assert spec.property_type_modifier is None and spec.label == "anterior"


def test_em_names_and_fallback():
    assert _sct(resolve_segment("cell").property_type) == ("SCT", "4421005")
    membrane = resolve_segment("membrane")
    assert (membrane.property_category.meaning, membrane.property_type.meaning) == ("Tissue", "Tissue")
    assert membrane.label == "membrane"


def _cid_values(*cids: int) -> set[str]:
    return {getattr(codes.SCT, keyword).value for cid in cids for keyword in cid_concepts[cid].get("SCT", [])}


def test_every_table_code_is_a_pydicom_code_from_the_right_context_group():
    categories = _cid_values(7150)  # Segmentation Property Category
    types = _cid_values(7151, 8135)  # Segmentation Property Type; Microscopy Annotation Property Type (Cell)
    modifiers = _cid_values(2)  # Anatomic Modifier
    for name, (category, type_, modifier) in known_segments().items():
        assert category.value in categories, name
        assert type_.value in types, name
        assert modifier is None or modifier.value in modifiers, name


def test_resolve_segments_keeps_given_specs_and_sorts():
    given = SegmentSpec("custom", codes.SCT.Tissue, codes.SCT.Liver)
    resolved = resolve_segments({2: "spleen", 1: given})
    assert list(resolved) == [1, 2] and resolved[1] is given
    assert resolved[2].property_type.meaning == "Spleen"


def test_label_length_is_checked():
    with pytest.raises(ValueError, match="64"):
        SegmentSpec("x" * 65, codes.SCT.Tissue, codes.SCT.Tissue)
