"""Definitions the chapters write in their cells and the package does not keep (chapter 03's ``build_cnn``, chapter
04's ``build_top_classifier`` and its cut of the backbone), for tests, benchmarks and scripts."""

from __future__ import annotations
import __future__

import ast
import functools
import json

import cxr_utils


@functools.cache
def saved(name: str):
    """The top-level function or class ``name`` of the first chapter whose code cells define it, executed with the
    chapters' imports (``keras``, ``np``, ``pd``, ``cxr``); KeyError when no chapter defines it."""
    import keras
    import numpy as np
    import pandas as pd

    for path in sorted((cxr_utils.project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            lines = "".join(cell["source"]).splitlines() if cell["cell_type"] == "code" else []
            tree = ast.parse("\n".join(line for line in lines if not line.startswith(("%", "!"))))
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                    code = compile(ast.Module([node], []), str(path), "exec", __future__.annotations.compiler_flag)
                    namespace = {"keras": keras, "np": np, "pd": pd, "cxr": cxr_utils, "__name__": path.stem}
                    exec(code, namespace)
                    return namespace[name]
    raise KeyError(f"no chapter defines {name!r}")


def split_backbone(
    architecture: str = "MobileNetV2",
    *,
    input_size: int = 224,
    alpha: float = 0.5,
    cut_layer: str | None = None,
    **weights,
):
    """Chapter 04's cut of an ImageNet backbone: a frozen bottom (input to ``cut_layer``) and a trainable top
    (:class:`cxr_utils.models.SplitBackbone`); ``weights`` go to :func:`cxr_utils.models.build_backbone`."""
    import keras

    from cxr_utils.models import CUT_LAYERS, SplitBackbone, build_backbone

    backbone = build_backbone(architecture, input_size=input_size, alpha=alpha, **weights)
    cut_layer = cut_layer or CUT_LAYERS[architecture]
    cut = backbone.get_layer(cut_layer).output
    bottom = keras.Model(backbone.input, cut, name=f"{architecture}_bottom")
    top = keras.Model(cut, backbone.output, name=f"{architecture}_top")
    bottom.trainable = False
    return SplitBackbone(architecture, alpha, input_size, cut_layer, bottom, top)
