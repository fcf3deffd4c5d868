"""`nnship explain`: which layers of a quantized (or FP16) model cause its drift.

`layers.py` ranks the layers and attaches the ranking to a report; `run.py` streams sample
batches through the float model, the artifact and the per-layer probe (`isolation.py`)."""
