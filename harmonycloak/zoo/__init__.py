"""The zoo: pretrained base models of every attacker family, trained here on open music.

    >>> from harmonycloak.zoo import load_zoo_model
    >>> model = load_zoo_model("ar-gru")   # float32, eval mode, checksum checked

See `registry` (what each model is and how it is trained), `sources` and `audio_corpus`
(the data and its fixed splits), `train` (``harmonycloak zoo train NAME``) and `store`
(weight files, manifest, loading). Importing the package imports nothing heavy: the command
line builds its parser from `harmonycloak.zoo.cli` without loading torch.
"""

__all__ = ["load_named_model", "load_weights_file", "load_zoo_model"]


def __getattr__(name: str):
    if name in __all__:
        from harmonycloak.zoo import store

        return getattr(store, name)
    raise AttributeError(f"module 'harmonycloak.zoo' has no attribute {name!r}")
