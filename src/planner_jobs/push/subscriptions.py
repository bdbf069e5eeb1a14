"""Checking a browser's `PushSubscription.toJSON()` before storing it."""

from __future__ import annotations

import binascii
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ec

from planner_jobs.domain.push import endpoint_problem
from planner_jobs.push.keys import b64url_decode


def subscription_problems(
    endpoint: str, p256dh: str, auth: str, *, allowed_hosts: Sequence[str]
) -> dict[str, str]:
    """Field -> reason, for every part of the subscription we would not push to."""
    problems = {}
    if (reason := endpoint_problem(endpoint, allowed_hosts)) is not None:
        problems["endpoint"] = reason
    try:
        point = b64url_decode(p256dh)
        if len(point) != 65 or point[0] != 4:
            raise ValueError("not an uncompressed point")
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, binascii.Error):
        problems["keys.p256dh"] = "must be a base64url uncompressed P-256 public key (65 bytes)"
    try:
        if len(b64url_decode(auth)) != 16:
            raise ValueError("wrong length")
    except (ValueError, binascii.Error):
        problems["keys.auth"] = "must be a base64url 16-byte secret"
    return problems
