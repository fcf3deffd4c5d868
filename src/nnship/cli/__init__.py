"""The command line: a thin layer over `nnship.api`. Each command lives in `cmd_<name>.py`."""
