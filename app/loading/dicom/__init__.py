"""DICOM input: discovery of series in folder trees (:mod:`.discover`) and series -> Volume (:mod:`.reader`).

Modules: ``header`` (one file's header record), ``classify`` (image or not, supported or not), ``filters``
(``Key=Value``/``Key~Regex`` rules), ``discover`` (walk, group, select), ``geometry`` (stack validation and
affine), ``pixels`` (decoding and rescale), ``reader`` (series -> LPS Volume), ``options`` (tolerances).
"""
