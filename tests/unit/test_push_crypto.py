"""RFC 8291 Appendix A, byte for byte, and the VAPID header (adapters over `cryptography`)."""

from __future__ import annotations

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import decode as decode_jwt

from planner_jobs.errors import ConfigurationError
from planner_jobs.push.encryption import PayloadTooLarge, encrypt
from planner_jobs.push.keys import VapidKeys, b64url, b64url_decode
from planner_jobs.push.vapid import VapidSigner

PLAINTEXT = b"When I grow up, I want to be a watermelon"
UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmY"
    "WAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexS"
    "gSxsj_Qulcy4a-fN"
)


def private_key(raw: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(raw), "big"), ec.SECP256R1())


def test_encryption_matches_rfc_8291_appendix_a_byte_for_byte() -> None:
    body = encrypt(
        PLAINTEXT,
        p256dh=b64url_decode(UA_PUBLIC),
        auth=b64url_decode(AUTH),
        salt=b64url_decode(SALT),
        ephemeral=private_key(AS_PRIVATE),
    )

    assert b64url(body) == BODY


def test_a_browser_decrypts_what_we_send() -> None:
    body = encrypt(PLAINTEXT, p256dh=b64url_decode(UA_PUBLIC), auth=b64url_decode(AUTH))

    clear = http_ece.decrypt(
        body,
        private_key=private_key(UA_PRIVATE),
        auth_secret=b64url_decode(AUTH),
        version="aes128gcm",
    )

    assert clear == PLAINTEXT


def test_the_largest_payload_fits_and_one_byte_more_is_refused() -> None:
    largest = encrypt(b"x" * 3993, p256dh=b64url_decode(UA_PUBLIC), auth=b64url_decode(AUTH))

    assert len(largest) == 4096
    with pytest.raises(PayloadTooLarge, match="3994 bytes"):
        encrypt(b"x" * 3994, p256dh=b64url_decode(UA_PUBLIC), auth=b64url_decode(AUTH))


def test_vapid_headers_are_signed_per_origin_and_reused_until_near_expiry() -> None:
    keys = VapidKeys.generate()
    clock = [1_800_000_000.0]
    signer = VapidSigner(keys, "mailto:ops@example.com", clock=lambda: clock[0])

    fcm = signer.authorization("https://fcm.googleapis.com/fcm/send/a")
    again = signer.authorization("https://fcm.googleapis.com/fcm/send/b")
    mozilla = signer.authorization("https://updates.push.services.mozilla.com/wpush/v2/c")

    assert fcm == again
    assert fcm != mozilla
    token, key = (part.split("=", 1)[1] for part in fcm.removeprefix("vapid ").split(","))
    claims = decode_jwt(token, key)
    assert key == keys.application_server_key
    assert claims["aud"] == "https://fcm.googleapis.com"
    assert claims["sub"] == "mailto:ops@example.com"
    assert 0 < claims["exp"] - clock[0] <= 24 * 3600
    clock[0] += 12 * 3600
    assert signer.authorization("https://fcm.googleapis.com/fcm/send/a") != fcm


def test_keys_load_from_pem_or_raw_and_refuse_anything_else() -> None:
    keys = VapidKeys.generate()

    assert VapidKeys.parse(keys.private_pem().decode()).public_raw == keys.public_raw
    assert VapidKeys.parse(keys.private_raw).public_raw == keys.public_raw
    with pytest.raises(ConfigurationError, match="PLANNER_VAPID_PRIVATE_KEY"):
        VapidKeys.parse("not a key")
    with pytest.raises(ConfigurationError, match="PLANNER_VAPID_PRIVATE_KEY"):
        VapidKeys.parse(b64url(b"short"))
