"""Declared models ("bring your own model"): a model is a TOML declaration file, not code.

- :mod:`~ia_continu.declared.schema`: what a declaration says and how it is checked;
- :mod:`~ia_continu.declared.load`: every declaration of a folder plus the built-ins;
- :mod:`~ia_continu.declared.features`: request rows and frames → a validated float matrix;
- :mod:`~ia_continu.declared.build`: the unfitted scikit-learn pipeline and the fallback;
- :mod:`~ia_continu.declared.formula`: the safe arithmetic of fallback formulas;
- :mod:`~ia_continu.declared.onnx`: ONNX Runtime scoring, kept only when it agrees;
- :mod:`~ia_continu.declared.metrics`: the task's metrics and the promotion gate;
- :mod:`~ia_continu.declared.data`: simulators, bundled datasets, random valid rows.

The API loads and checks the declarations at start and lists them (``GET /models/declared``);
nothing here is wired into serving, the flows or the registry yet.
"""

from ia_continu.declared.errors import DeclarationError, Problem
from ia_continu.declared.load import load_declarations
from ia_continu.declared.schema import Declaration

__all__ = ["Declaration", "DeclarationError", "Problem", "load_declarations"]
