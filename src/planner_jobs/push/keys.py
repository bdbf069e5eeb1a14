"""The VAPID key pair: from `PLANNER_VAPID_PRIVATE_KEY`, or in development generated once into
the data directory."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from planner_jobs.errors import ConfigurationError
from planner_jobs.settings import Settings

DEV_KEY_FILE = "vapid_private_key.pem"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def parse(cls, text: str) -> VapidKeys:
        """A PEM private key, or the base64url raw 32-byte private scalar."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                key = serialization.load_pem_private_key(text.encode(), password=None)
            else:
                raw = b64url_decode(text)
                if len(raw) != 32:
                    raise ValueError("a raw P-256 private key is 32 bytes")
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"PLANNER_VAPID_PRIVATE_KEY is not a P-256 key: {exc}"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ConfigurationError("PLANNER_VAPID_PRIVATE_KEY is not a P-256 (prime256v1) key")
        return cls(key)

    @property
    def public_raw(self) -> bytes:
        """The uncompressed public point: the browser's `applicationServerKey`."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @property
    def application_server_key(self) -> str:
        return b64url(self.public_raw)

    @property
    def private_raw(self) -> str:
        return b64url(self.private_key.private_numbers().private_value.to_bytes(32, "big"))

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def vapid(self) -> Vapid02:
        vapid = Vapid02()
        vapid.private_key = self.private_key
        return vapid


def load_vapid_keys(settings: Settings) -> VapidKeys:
    """The configured key; in development, the one kept in the data directory (made once)."""
    if settings.vapid_private_key is not None and settings.vapid_private_key.get_secret_value():
        return VapidKeys.parse(settings.vapid_private_key.get_secret_value())
    if settings.env == "production":
        raise ConfigurationError(
            "PLANNER_VAPID_PRIVATE_KEY is required when PLANNER_ENV=production"
        )
    return _development_key(settings.data_dir / DEV_KEY_FILE)


def _development_key(path: Path) -> VapidKeys:
    if path.exists():
        return VapidKeys.parse(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = VapidKeys.generate()
    # O_EXCL: when two processes start at once, one writes and the other reads its key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return VapidKeys.parse(path.read_text())
    with os.fdopen(descriptor, "wb") as out:
        out.write(keys.private_pem())
    return keys
