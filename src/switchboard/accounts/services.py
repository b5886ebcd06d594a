"""Users: creation, lookup and password hashing (argon2)."""

from __future__ import annotations

from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from switchboard.accounts.tables import User

Role = Literal["admin", "member"]
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A user cannot be created or changed as asked (the message says why)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def get_user_by_name(username: str) -> User | None:
    return await User.objects().where(User.username == username).first()


async def create_user(
    username: str,
    *,
    password: str | None = None,
    role: Role = "member",
    rpm: int | None = None,
    tpm: int | None = None,
) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("a username has 1 to 64 characters")
    if await get_user_by_name(username):
        raise AccountError(f"user {username!r} already exists")
    user = User(
        username=username, role=role, password_hash=hash_password(password) if password else ""
    )
    if rpm is not None:
        user.default_rpm = rpm
    if tpm is not None:
        user.default_tpm = tpm
    await user.save()
    return user
