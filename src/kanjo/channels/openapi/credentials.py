"""Client ids, client secrets and access tokens: how they are made, stored and checked (ADR 0007).

- A client secret is 256 random bits, shown once, stored only as an argon2id hash (argon2-cffi). Checking one costs
  ~25 ms of a core and 19 MiB, so checks run in worker threads, at most `openapi_secret_checks_in_flight_max` at
  once, with a bounded wait (beyond it: busy), never on the event loop.
- An access token is 256 random bits, opaque; only its SHA-256 is stored. A fast hash is enough for a random
  256-bit value (nothing to guess), and it lets every request find its token by an indexed lookup.
- Both carry a prefix (`kcs_`, `kat_`) so that a leaked one is recognisable by secret scanners and in logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kanjo.channels.openapi.limits import SECRET_CHECKS_IN_FLIGHT_MAX, SECRET_CHECKS_WAITING_MAX
from kanjo.kernel.limits import LimitReached, limits

CLIENT_ID = re.compile(r"^kc_[0-9a-f]{24}$")
SECRET_PREFIX = "kcs_"
TOKEN_PREFIX = "kat_"
RANDOM_BYTES = 32
# OWASP's argon2id profile (m = 19 MiB, t = 2, p = 1): the secret is random, so the cost only slows an attacker who
# stole the hashes and must still try 2^256 values; it is kept modest because a token request pays it.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19_456
ARGON2_PARALLELISM = 1
TOKEN_CHARS_MAX = 128
T = TypeVar("T")
_TOKEN_SYNTAX = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")  # RFC 6750 b64token


def new_client_id() -> str:
    return f"kc_{secrets.token_hex(12)}"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def token_digest(token: str) -> bytes:
    """What the database keeps of a token, and what a request's token is looked up by."""
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def is_token_syntax(token: str) -> bool:
    return 0 < len(token) <= TOKEN_CHARS_MAX and bool(_TOKEN_SYNTAX.match(token))


class SecretHasher:
    """argon2id hashing and checking of client secrets, off the event loop and bounded."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                                      parallelism=ARGON2_PARALLELISM)
        self._slots = asyncio.Semaphore(SECRET_CHECKS_IN_FLIGHT_MAX)
        self._waiting = 0
        # Checked against when the client id is unknown, so that the answer takes as long as for a wrong secret.
        self._decoy = self._hasher.hash(new_secret())

    async def hash(self, secret: str) -> str:
        return await self._bounded(self._hasher.hash, secret)

    async def verify(self, encoded: str | None, secret: str) -> bool:
        """Whether `secret` is the one `encoded` was made from; an unknown client (None) is checked against a
        decoy and is never right."""
        target = self._decoy if encoded is None else encoded
        matched = await self._bounded(self._check, target, secret)
        return bool(matched) and encoded is not None

    def _check(self, encoded: str, secret: str) -> bool:
        try:
            return self._hasher.verify(encoded, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """A hash made with older parameters is replaced after the next successful check."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    async def _bounded(self, fn: Callable[..., T], *args: object) -> T:
        if self._waiting >= SECRET_CHECKS_WAITING_MAX:
            raise LimitReached(limits.get("openapi_secret_checks_waiting_max"), self._waiting + 1)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self._slots.release()
