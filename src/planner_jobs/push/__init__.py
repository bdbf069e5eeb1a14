"""Web Push: VAPID keys, RFC 8291 encryption, RFC 8292 signing, and the HTTP sender."""
