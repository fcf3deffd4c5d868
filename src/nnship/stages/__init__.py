"""The stages of `nnship build`, one module each: a recipe section and the stage before it in,
a typed result out; `context.py` is what every stage is handed, `cache.py` the stage cache."""
