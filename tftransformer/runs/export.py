"""The export job: a trained run as a SavedModel for TF Serving, or a CTranslate2 model.

`export_run(run, format, ...)` picks the format and writes under `RUN/export/`:
`translator/<N>/` (TF Serving's layout, `--format savedmodel`) or
`ctranslate2/<quantization>/` (`--format ctranslate2`). An option that belongs to the
other format is refused with a `RunError` naming it.
"""

from __future__ import annotations

from pathlib import Path

from tftransformer._files import RunError
from tftransformer.inference.search import DEFAULT_ALPHA, DEFAULT_BEAM_SIZE

FORMATS = ("savedmodel", "ctranslate2")


def export_run(run, format="savedmodel", *, quantization="float32", version=None,
               beam_size=DEFAULT_BEAM_SIZE, alpha=DEFAULT_ALPHA) -> Path:  # fmt: skip
    """Export `run` (a `runs.run.Run`); the directory written."""
    if format not in FORMATS:
        raise RunError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "ctranslate2":
        from tftransformer.inference.ctranslate2_converter import ConversionError, convert

        if version is not None:
            raise RunError("--version is for --format savedmodel (TF Serving's layout)")
        try:
            return convert(run.model, run.tokenizers,
                           run.dir.export_root("ctranslate2") / quantization,
                           quantization)  # fmt: skip
        except ConversionError as error:
            raise RunError(f"--format ctranslate2: {error}") from None
    if quantization != "float32":
        raise RunError("--quantization is for --format ctranslate2")
    from tftransformer.inference.serving_translator import export_translator

    return export_translator(run.translator(), run.dir.export_root("translator"), version,
                             run.max_tokens, beam_size=beam_size, alpha=alpha)  # fmt: skip
