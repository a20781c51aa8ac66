"""Bearer-token authentication: ``Authorization: Bearer <FTI_SERVE_TOKEN>``, compared in
constant time. ``/health`` is open; every other route depends on ``require_token``."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def token_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries ``token`` (constant-time comparison)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(given.strip().encode(), token.encode())


def require_token(request: Request) -> None:
    """Refuse the request (401) unless it carries the service's token; no token configured
    (``fti serve --insecure-no-token``) lets every request through."""
    token = request.app.state.config.token
    if token is None:
        return
    header = request.headers.get("authorization")
    if not token_matches(header, token):
        reason = "wrong bearer token" if header else "missing bearer token"
        raise HTTPException(
            401,
            f"{reason}: send the header 'Authorization: Bearer <FTI_SERVE_TOKEN>'",
            headers=CHALLENGE,
        )
