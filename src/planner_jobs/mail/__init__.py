"""E-mail out: one SMTP client connection per sending job, reused for every message."""
