"""Common resources (issue 11): object definitions, transformations and the mapping engine.

``paths`` reads and writes ``vendorPath``/``path`` expressions, ``mapping`` turns vendor objects
into canonical ones and back (D37, D36), ``query`` rewrites CEQL over canonical fields (D38).
None of them knows HTTP or SQL.
"""
