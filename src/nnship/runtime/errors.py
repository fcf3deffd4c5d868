"""The one error the device-side runtime raises for anything a user or a damaged bundle causes."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle is missing, damaged, of another schema version, asks for a runtime this device
    lacks, or is given input it cannot take. The message names the file, field or tensor.

    A `ValueError` (the runtime imports no other nnship module); the full package's CLI turns
    it into one line on stderr and exit code 2 (`exit_code`)."""

    exit_code = 2
