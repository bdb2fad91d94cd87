"""Link type: fiber, GEO or LEO satellite, cellular or other, with the evidence for the verdict.

`features` and `classify` are pure (numbers in, a verdict out); `evidence` gathers the
numbers on the wire; `report` turns a verdict into Reading fields; `settings` is `[linktype]`.
"""
