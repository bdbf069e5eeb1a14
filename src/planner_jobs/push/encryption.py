"""RFC 8291 message encryption (`aes128gcm`, one record) for a browser's subscription keys."""

from __future__ import annotations

import os

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from planner_jobs.domain.push import MAX_PLAINTEXT
from planner_jobs.errors import PlannerError

RECORD_SIZE = 4096


class PayloadTooLarge(PlannerError):
    """The notification is larger than a push service accepts."""


def encrypt(
    plaintext: bytes,
    *,
    p256dh: bytes,
    auth: bytes,
    salt: bytes | None = None,
    ephemeral: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """The encrypted body; `salt` and `ephemeral` are fresh unless given (test vectors)."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise PayloadTooLarge(
            f"the notification is {len(plaintext)} bytes; at most {MAX_PLAINTEXT} fit in a push"
        )
    # The header's key id is the ephemeral public key: http_ece puts it there itself.
    body: bytes = http_ece.encrypt(
        plaintext,
        salt=salt or os.urandom(16),
        private_key=ephemeral or ec.generate_private_key(ec.SECP256R1()),
        dh=p256dh,
        auth_secret=auth,
        rs=RECORD_SIZE,
        version="aes128gcm",
    )
    return body
