"""Users: creation, lookup, password hashing (argon2) and password changes.

Usernames are normalised once (stripped, case-folded) for storage, lookup and the sign-in
throttle alike. Hashing and verifying run in a worker thread behind a small thread pool, so a
burst of sign-ins cannot stall the streams that share the event loop; an unknown name is
verified against a dummy hash, so the time taken does not tell which names exist.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from switchboard.accounts.tables import User

Role = Literal["admin", "member"]
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")
HASHING_AT_ONCE = 2
# A pool of its own bounds the concurrent hashes (and works from any event loop).
_hashing = ThreadPoolExecutor(max_workers=HASHING_AT_ONCE, thread_name_prefix="argon2")


class AccountError(ValueError):
    """A user cannot be created or changed as asked (the message says why)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def normalise_username(username: str) -> str:
    return username.strip().casefold()


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


async def check_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is ``user``'s (False for None, after the same work)."""
    stored = user.password_hash if user is not None else ""
    return await asyncio.get_running_loop().run_in_executor(
        _hashing, verify_password, stored, password
    )


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, hash_password, password)


def password_problem(password: str, min_length: int) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < min_length:
        return f"A password has at least {min_length} characters."
    if len(password) > 1024:
        return "A password has at most 1024 characters."
    return None


async def set_password(user_id: int, password: str) -> User | None:
    """Replace a user's password (which ends their sessions); the user, or None if none."""
    await User.update({User.password_hash: await hash_password_async(password)}).where(
        User.id == user_id
    )
    return await User.objects().where(User.id == user_id).first()


async def get_user_by_name(username: str) -> User | None:
    """None for a name no user can have: one with a NUL character (PostgreSQL refuses the
    query, so it would be a 500 rather than "no such user")."""
    if "\x00" in username:
        return None
    return await User.objects().where(User.username == normalise_username(username)).first()


async def create_user(
    username: str,
    *,
    password: str | None = None,
    role: Role = "member",
    rpm: int | None = None,
    tpm: int | None = None,
) -> User:
    username = normalise_username(username)
    if not username or len(username) > 64:
        raise AccountError("a username has 1 to 64 characters")
    if await get_user_by_name(username):
        raise AccountError(f"user {username!r} already exists")
    user = User(
        username=username,
        role=role,
        password_hash=await hash_password_async(password) if password else "",
    )
    if rpm is not None:
        user.default_rpm = rpm
    if tpm is not None:
        user.default_tpm = tpm
    await user.save()
    return user


async def get_user(user_id: int) -> User | None:
    return await User.objects().where(User.id == user_id).first()


async def usernames(user_ids: list[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = await User.select(User.id, User.username).where(User.id.is_in(user_ids))
    return {int(row["id"]): str(row["username"]) for row in rows}
