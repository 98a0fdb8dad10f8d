"""A tiny helper shared by the layers' `build` methods."""


def build_once(layer, *shapes):
    """`layer.build(*shapes)` unless it is already built.

    A sub-layer may have been built by calling it directly (e.g.
    `transformer.encoder(ids)` before `transformer(...)`); building twice
    would try to create its weights again.
    """
    if not layer.built:
        layer.build(*shapes)
