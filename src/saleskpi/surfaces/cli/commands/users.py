"""Users of the web product and API: add, list, tokens."""

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
    rep: Annotated[str | None, typer.Option("--rep", help="The rep's id (role rep).")] = None,
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
    from saleskpi.service.auth import AuthError, add_user

    secret = password or typer.prompt(_("Password"), hide_input=True,
                                      confirmation_prompt=True)
    try:
        user = add_user(state.settings, username, secret, role, rep_id=rep, team=team,
                        lang=lang)
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
) -> None:
    """Issue an API token for scripts (shown once; send as 'Authorization: Bearer ...').

    Example: saleskpi user token anna --name nightly-export
    """
    from saleskpi.service.auth import issue_token, list_users

    match = [u for u in list_users(state.settings) if u.username == username]
    if not match:
        raise fail(_("no user {name!r}", name=username))
    write(issue_token(state.settings, match[0].user_id, name))
