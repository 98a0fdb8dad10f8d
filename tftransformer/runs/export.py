"""The export job: a trained run as a SavedModel for TF Serving, a CTranslate2 model, or a
LiteRT file for on-device use.

`export_run(run, format, ...)` picks the format and writes under `RUN/export/`:
`translator/<N>/` (TF Serving's layout, `--format savedmodel`),
`ctranslate2/<quantization>/` (`--format ctranslate2`) or
`litert/<quantization>/translator.tflite` (`--format litert`). An option that belongs to
another format is refused with a `RunError` naming it.
"""

from __future__ import annotations

from pathlib import Path

from tftransformer._files import RunError
from tftransformer.inference.search import DEFAULT_ALPHA, DEFAULT_BEAM_SIZE

FORMATS = ("savedmodel", "ctranslate2", "litert")
QUANTIZATIONS = {"savedmodel": ("float32",), "ctranslate2": ("float32", "int8"),
                 "litert": ("float32", "dynamic-int8")}  # fmt: skip
LITERT_FILE = "translator.tflite"


def litert_path(run_dir, quantization="float32") -> Path:
    """Where `export --format litert` writes a run's `.tflite` file (`run_dir`: a `RunDir`)."""
    return run_dir.export_root("litert") / quantization / LITERT_FILE


def export_run(run, format="savedmodel", *, quantization="float32", version=None,
               beam_size=DEFAULT_BEAM_SIZE, alpha=DEFAULT_ALPHA) -> Path:  # fmt: skip
    """Export `run` (a `runs.run.Run`); the directory written."""
    if format not in FORMATS:
        raise RunError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if quantization not in QUANTIZATIONS[format]:
        raise RunError(f"--quantization {quantization} is not for --format {format} "
                       f"(it takes {', '.join(QUANTIZATIONS[format])})")  # fmt: skip
    if format != "savedmodel" and version is not None:
        raise RunError("--version is for --format savedmodel (TF Serving's layout)")
    if format == "litert":
        from tftransformer.inference.litert import LiteRTError, convert_litert

        try:
            return convert_litert(run, litert_path(run.dir, quantization), quantization)
        except LiteRTError as error:
            raise RunError(f"--format litert: {error}") from None
    if format == "ctranslate2":
        from tftransformer.inference.ctranslate2_converter import ConversionError, convert

        try:
            return convert(run.model, run.tokenizers,
                           run.dir.export_root("ctranslate2") / quantization,
                           quantization)  # fmt: skip
        except ConversionError as error:
            raise RunError(f"--format ctranslate2: {error}") from None
    from tftransformer.inference.serving_translator import export_translator

    return export_translator(run.translator(), run.dir.export_root("translator"), version,
                             run.max_tokens, beam_size=beam_size, alpha=alpha)  # fmt: skip
