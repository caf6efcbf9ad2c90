"""Secrets kanjo needs at start-up: the PIN verification key. Production must name it; a laptop gets one made."""

from __future__ import annotations

import os
import secrets

from kanjo.platform.settings import Settings

PIN_KEY_BYTES = 32


def pin_key(settings: Settings) -> bytes:
    """KANJO_PIN_KEY_HEX when set; refused when missing in production (a default secret there would be a breach);
    otherwise a random key kept in var/pin.key, so a restart verifies the PINs it issued."""
    if settings.pin_key_hex:
        return bytes.fromhex(settings.pin_key_hex)
    if settings.environment == "production":
        raise RuntimeError("KANJO_PIN_KEY_HEX must be set in production (64 hex digits from the bank's key store)")
    path = settings.var_dir / "pin.key"
    if not path.exists():
        _create_once(path)
    key = path.read_bytes()
    if len(key) != PIN_KEY_BYTES:
        raise RuntimeError(f"{path} is not a {PIN_KEY_BYTES}-byte key: remove it to have a new one made")
    return key


def _create_once(path: os.PathLike[str] | str) -> None:
    """Write a new key beside the target and link it into place: concurrent starters agree on one key, and no one
    ever reads a half-written file."""
    target = os.fspath(path)
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    scratch = f"{target}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(PIN_KEY_BYTES))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(scratch, target)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        os.unlink(scratch)
