"""FASTDS_SECRET: taken from the environment, else generated once and kept on disk.

Owns the key of our branch and Record-Route tags (ext/marks.pyx). Generated as
32 random bytes in FASTDS_STATE_DIR/secret (mode 0600, created exclusively so processes
starting together agree). Nodes that share dialogs must share the secret: set it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastds.errors import FastdsError


def load_or_create_secret(configured: str, state_dir: str) -> bytes:
    if configured:
        return configured.encode()
    path = Path(state_dir) / "secret"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise FastdsError(f"cannot create {path} for the generated FASTDS_SECRET: {exc.strerror}; "
                          "set FASTDS_SECRET or FASTDS_STATE_DIR") from None
    else:
        with os.fdopen(fd, "w") as file:
            file.write(os.urandom(32).hex())
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise FastdsError(f"cannot read {path}: {exc.strerror}") from None
    if not secret:
        raise FastdsError(f"{path} is empty; delete it to generate a new FASTDS_SECRET")
    return secret.encode()
