"""REST v1: Reps, users and API tokens (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from saleskpi.service.auth import Principal
from saleskpi.surfaces.http.deps import ServiceDep, UserDep, csrf_header
from saleskpi.surfaces.http.params import IdPath, Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT, require_manager
from saleskpi.views.people import (
    DeletedUser,
    IssuedToken,
    NewToken,
    NewUser,
    RepsParams,
    RepsView,
    RevokedToken,
    RevokeToken,
    TokensParams,
    TokensView,
    UsersParams,
    UsersView,
    UserTarget,
    UserView,
    change_user,
    create_user,
    delete_user,
    issue_token,
    reps,
    revoke_token,
    tokens,
    users,
)
from saleskpi.views.people import UserChange as UserChangeParams

router = APIRouter(prefix="/api/v1")


def manager_caller(user: UserDep) -> Principal:
    """The caller, if an admin or the head of sales: else 403 problem details (forbidden)."""
    require_manager(user)
    return user


# Checked before the request body is read, so a rep learns "forbidden", not "invalid".
ManagerCaller = Annotated[Principal, Depends(manager_caller)]


@router.get("/reps", response_model=RepsView)
def list_reps(user: UserDep, svc: ServiceDep, limit: Limit = DEFAULT_LIMIT,
              offset: Offset = 0) -> dict[str, Any]:
    """Reps as people matched across sources (`saleskpi reps --format json`), in your scope."""
    return reps(svc, user, RepsParams(limit=limit, offset=offset)).to_json()


@router.get("/users", response_model=UsersView)
def list_users(user: ManagerCaller, svc: ServiceDep, limit: Limit = DEFAULT_LIMIT,
               offset: Offset = 0) -> dict[str, Any]:
    """Users and their roles (`saleskpi user list --format json`): managers only."""
    return users(svc, user, UsersParams(limit=limit, offset=offset)).to_json()


@router.post("/users", status_code=201, response_model=UserView,
             dependencies=[Depends(csrf_header)])
def add_user(body: NewUser, user: ManagerCaller, svc: ServiceDep) -> dict[str, Any]:
    """Add a user (managers; only an admin adds admins)."""
    return create_user(svc, user, body).to_json()


class UserPatch(BaseModel):
    disabled: bool = Field(description="True: refuse the user's sign-ins, sessions and "
                           "tokens at once; false: let them sign in again.")


@router.patch("/users/{user_id}", response_model=UserView,
              dependencies=[Depends(csrf_header)])
def patch_user(user_id: IdPath, body: UserPatch, user: ManagerCaller,
               svc: ServiceDep) -> dict[str, Any]:
    """Disable or enable a user (`saleskpi user disable/enable`): managers; not yourself,
    not the last admin, and only an admin disables admins."""
    return change_user(svc, user, UserChangeParams(id=user_id,
                                                   disabled=body.disabled)).to_json()


@router.delete("/users/{user_id}", response_model=DeletedUser,
               dependencies=[Depends(csrf_header)])
def remove_user(user_id: IdPath, user: ManagerCaller, svc: ServiceDep) -> dict[str, Any]:
    """Delete a user and their tokens (`saleskpi user delete`): managers, as for disabling."""
    return delete_user(svc, user, UserTarget(id=user_id)).to_json()


@router.get("/tokens", response_model=TokensView)
def list_tokens(user: UserDep, svc: ServiceDep,
                username: Annotated[str | None, Query(
                    description="Another user's tokens (managers).")] = None) -> dict[str, Any]:
    """Your API tokens: names and dates, never the secrets."""
    return tokens(svc, user, TokensParams(username=username)).to_json()


@router.delete("/tokens/{token_id}", response_model=RevokedToken,
               dependencies=[Depends(csrf_header)])
def delete_token(token_id: IdPath, user: UserDep, svc: ServiceDep) -> dict[str, Any]:
    """Revoke a token at once (`saleskpi user revoke-token`): its owner or a manager."""
    return revoke_token(svc, user, RevokeToken(id=token_id)).to_json()


@router.post("/tokens", status_code=201, response_model=IssuedToken,
             dependencies=[Depends(csrf_header)])
def create_token(body: NewToken, user: UserDep, svc: ServiceDep) -> dict[str, Any]:
    """A token for scripts, shown once: 'Authorization: Bearer <token>'."""
    return issue_token(svc, user, body).to_json()
