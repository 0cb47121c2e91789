"""Users of the web product and API: add, list, disable, delete, tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import ReportFormat, app, fail, out, service, state, write
from saleskpi.surfaces.cli.options import LimitOption, OffsetOption

user_app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="admin, head, team_lead or rep.")],
    rep: Annotated[str | None, typer.Option(
        "--rep", help="The rep's id or name (role rep).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="The team (role team_lead).")]
    = None,
    lang: Annotated[str, typer.Option("--lang", help="en, ru or uk.")] = "en",
    password: Annotated[
        str | None, typer.Option("--password", help="Asked for (hidden) when not given.")
    ] = None,
) -> None:
    """Add a user who signs in to the web dashboard and API.

    Example: saleskpi user add olena --role team_lead --team Київ --lang uk
    """
    from saleskpi.service.auth import AuthError
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import NewUser, create_user

    secret = password or typer.prompt(_("Password"), hide_input=True,
                                      confirmation_prompt=True)
    try:
        # As the API and the web add users: the rep and the team checked against the data.
        user = create_user(service(), LOCAL, NewUser(username=username, password=secret,
                                                     role=role, rep_id=rep, team=team,
                                                     lang=lang))
    except AuthError as exc:
        raise fail(str(exc)) from None
    out.print(_("User {name} added ({role}).", name=user.username, role=user.role),
              highlight=False)


@user_app.command("list")
def user_list(
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """List users and their roles.

    Example: saleskpi user list --format json
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import UsersParams, users
    from saleskpi.views.text import to_json

    view = users(service(), LOCAL, UsersParams(limit=limit, offset=offset))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    for u in view.users:
        out.print(f"{u.username}\t{u.role}\t{u.rep_id or u.team or ''}\t{u.lang}",
                  highlight=False)


@user_app.command("token")
def user_token(
    username: Annotated[str, typer.Argument(help="Whose token.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "script",
    days: Annotated[int | None, typer.Option(
        "--days", min=1, help="The token stops working after this many days (default: "
        "never).")] = None,
) -> None:
    """Issue an API token for scripts (shown once; send as 'Authorization: Bearer ...').

    Example: saleskpi user token anna --name nightly-export --days 90
    """
    from saleskpi.service.auth import issue_token, list_users

    match = [u for u in list_users(state.settings) if u.username == username]
    if not match:
        raise fail(_("no user {name!r}", name=username))
    write(issue_token(state.settings, match[0].user_id, name, days=days))


@user_app.command("tokens")
def user_tokens(
    username: Annotated[str, typer.Argument(help="Whose tokens.")],
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """List a user's API tokens: ids, names and dates, never the secrets.

    Example: saleskpi user tokens anna --format json
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import TokensParams, tokens
    from saleskpi.views.text import to_json

    view = tokens(service(), LOCAL, TokensParams(username=username))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    for t in view.tokens:
        status = (_("revoked") if t.revoked else
                  _("expires {when}", when=t.expires.isoformat()) if t.expires else "")
        out.print(f"{t.id}\t{t.name}\t{t.created.isoformat()}\t{status}", highlight=False)


@user_app.command("revoke-token")
def user_revoke_token(
    username: Annotated[str, typer.Argument(help="Whose token.")],
    token_id: Annotated[int, typer.Argument(help="The token's id (saleskpi user tokens).")],
) -> None:
    """Revoke an API token at once: scripts using it are refused from now on.

    Example: saleskpi user revoke-token anna 3
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import RevokeToken, revoke_token

    view = revoke_token(service(), LOCAL, RevokeToken(id=token_id, username=username))
    out.print(_("Token {id} ({name}) of {user} revoked.", id=view.revoked.id,
                name=view.revoked.name, user=username), highlight=False)


def _set_disabled(username: str, disabled: bool) -> None:
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import UserChange, change_user

    change_user(service(), LOCAL, UserChange(username=username, disabled=disabled))


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Disable a user: sign-ins, sessions and API tokens are refused at once.

    Example: saleskpi user disable anna
    """
    _set_disabled(username, True)
    out.print(_("User {name} disabled.", name=username), highlight=False)


@user_app.command("enable")
def user_enable(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Let a disabled user sign in again (their old sessions stay ended).

    Example: saleskpi user enable anna
    """
    _set_disabled(username, False)
    out.print(_("User {name} enabled.", name=username), highlight=False)


@user_app.command("delete")
def user_delete(
    username: Annotated[str, typer.Argument(help="Login name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
) -> None:
    """Delete a user and their API tokens (not the last admin).

    Example: saleskpi user delete anna --yes
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import UserTarget, delete_user

    if not yes and not typer.confirm(_("Delete user {name}?", name=username)):
        raise typer.Exit(1)
    delete_user(service(), LOCAL, UserTarget(username=username))
    out.print(_("User {name} deleted.", name=username), highlight=False)
