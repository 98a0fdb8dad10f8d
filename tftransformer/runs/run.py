"""A trained translator run, loaded once: its settings, tokenizers and model.

Every command that works on a finished run (`translate`, `evaluate`, `plot`,
`export`, `average`) starts from `Run(path)`, so values read from the run (the
input trim `max_tokens` above all) are read in one place.
"""

from __future__ import annotations

import keras

from tftransformer._files import RunError, first_line
from tftransformer.runs.guard import NormTrackingAdam
from tftransformer.runs.paths import RunDir
from tftransformer.runs.schedule import RunSchedule
from tftransformer.runs.settings import load_settings
from tftransformer.tokenizers import load_tokenizers
from tftransformer.translator import Translator

# The Keras classes a trained run's `model.keras` names in its optimizer's config: imported
# (so registered) before any `load_model`.
SAVED_OPTIMIZER_CLASSES = (NormTrackingAdam, RunSchedule)


class Run:
    """`Run(path)`: a finished run dir's settings, tokenizers and model, or a `RunError`."""

    def __init__(self, path):
        self.dir = RunDir(path)
        self.dir.require("config", "tokenizers", "model")
        self.settings = load_settings(self.dir, for_training=False)
        try:
            self.tokenizers = load_tokenizers(self.dir.tokenizers)
        except Exception as error:
            raise RunError(f"{self.dir.tokenizers}: cannot load the tokenizers ({error})") from None
        try:
            self.model = keras.models.load_model(self.dir.model)
        except Exception as error:
            raise RunError(
                f"{self.dir.model}: cannot load the model ({first_line(error)})"
            ) from None

    @property
    def path(self):
        return self.dir.path

    @property
    def max_tokens(self) -> int:
        """The run's `max_tokens`: inputs are trimmed to it everywhere, as in training."""
        return self.settings.max_tokens

    def translator(self) -> Translator:
        """The tutorial's `Translator` over this run, trimming input as training did."""
        return Translator(self.tokenizers, self.model, max_input_tokens=self.max_tokens)

