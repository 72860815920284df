"""Webhook secrets and Standard Webhooks signatures (https://www.standardwebhooks.com/)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from importer.errors import InvalidInput

SECRET_PREFIX = "whsec_"
GENERATED_KEY_BYTES = 24
KEY_BYTES_RANGE = (24, 64)
MIN_PLAIN_SECRET_LENGTH = 16
MASK = "••••"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_KEY_BYTES)).decode("ascii")


def signing_key(secret: str) -> bytes:
    """`whsec_` secrets carry base64 key bytes; any other secret is used as its UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    return secret.encode("utf-8")


def validate_secret(secret: str) -> str:
    """A secret a receiver can verify with any Standard Webhooks library, and hard to guess."""
    secret = secret.strip()
    if secret.startswith(SECRET_PREFIX):
        try:
            size = len(signing_key(secret))
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("secret: the part after 'whsec_' must be valid base64") from exc
        low, high = KEY_BYTES_RANGE
        if not low <= size <= high:
            raise InvalidInput(f"secret: a 'whsec_' secret must decode to {low}-{high} bytes, not {size}")
    elif len(secret) < MIN_PLAIN_SECRET_LENGTH:
        raise InvalidInput(f"secret: must be at least {MIN_PLAIN_SECRET_LENGTH} characters")
    return secret


def mask_secret(secret: str) -> str:
    prefix = SECRET_PREFIX if secret.startswith(SECRET_PREFIX) else ""
    return f"{prefix}{MASK}{secret[-4:]}"


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode("utf-8")
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
