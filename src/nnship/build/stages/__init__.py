"""The stages of `nnship build`, one module each."""
