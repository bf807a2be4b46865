"""French for the parts of the command line that Typer writes itself.

Typer (0.29, with its vendored Click) writes usage errors and help panel titles in English, with
no translation catalogue. `FrenchGroup` and `FrenchCommand` translate them, and `FrenchGroup`
is also where a `TiflowError` becomes a one-line French message and exit code 1, never a
traceback. Exit codes: 0 success, 1 user error (TiflowError), 2 usage error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
import typer.rich_utils as rich_utils
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from models.errors import InvalidInput, TiflowError
from notifications.fr import plural

USER_ERROR = 1
USAGE_ERROR = 2

err_console = Console(stderr=True)

# Help panels and hints (module constants read at display time).
rich_utils.ARGUMENTS_PANEL_TITLE = "Arguments"
rich_utils.OPTIONS_PANEL_TITLE = "Options"
rich_utils.COMMANDS_PANEL_TITLE = "Commandes"
rich_utils.ERRORS_PANEL_TITLE = "Erreur"
rich_utils.ABORTED_TEXT = "Interrompu."
rich_utils.DEFAULT_STRING = "[par défaut : {}]"
rich_utils.REQUIRED_LONG_STRING = "[obligatoire]"
rich_utils.ENVVAR_STRING = "[variable d'environnement : {}]"
rich_utils.DEPRECATED_STRING = "(obsolète) "
rich_utils.RICH_HELP = "Aide : [blue]{command_path} {help_option}[/]"

HELP_TEXT = "Affiche cette aide et quitte."
SUBCOMMAND_METAVAR = "COMMANDE [ARGUMENTS]..."


def _quoted_list(text: str) -> str:
    return ", ".join(part.strip().strip("'") for part in text.split(","))


def _value_problem(text: str) -> str:
    patterns: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (
            r"^'(.*)' is not a valid integer( range)?\.?$",
            lambda m: f"« {m[1]} » n'est pas un nombre entier.",
        ),
        (
            r"^'(.*)' is not a valid float( range)?\.?$",
            lambda m: f"« {m[1]} » n'est pas un nombre.",
        ),
        (
            r"^'(.*)' is not one of (.+)\.$",
            lambda m: f"« {m[1]} » n'est pas parmi : {_quoted_list(m[2])}.",
        ),
        (r"^'(.*)' is not a valid boolean\.?$", lambda m: f"« {m[1]} » : répondez oui ou non."),
        (
            r"^(?:File|Path|Directory) '(.*)' does not exist\.$",
            lambda m: f"« {m[1]} » n'existe pas.",
        ),
    ]
    for pattern, french in patterns:
        if match := re.match(pattern, text):
            return french(match)
    return text


def translate(message: str) -> str:
    """A Typer/Click usage message in French (unknown messages are returned unchanged)."""
    patterns: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (
            r"^No such command '(.+?)'\.(?: Did you mean (.+)\?)?$",
            lambda m: (
                f"Commande inconnue : « {m[1]} »."
                + (f" Vouliez-vous dire {_quoted_list(m[2])} ?" if m[2] else "")
            ),
        ),
        (
            r"^No such option: (\S+)(?: \(Possible options: (.+)\))?$",
            lambda m: (
                f"Option inconnue : {m[1]}." + (f" Options proches : {m[2]}." if m[2] else "")
            ),
        ),
        (r"^Missing argument '(.+?)'\.(.*)$", lambda m: f"Argument manquant : {m[1]}."),
        (r"^Missing option '(.+?)'.*$", lambda m: f"Option manquante : {m[1]}."),
        (r"^Missing parameter:? '?(.+?)'?\.?$", lambda m: f"Paramètre manquant : {m[1]}."),
        (r"^Missing command\.$", lambda m: "Commande manquante."),
        (
            r"^Got unexpected extra argument(s?) \((.+)\)$",
            lambda m: f"Argument{m[1]} en trop : {m[2]}.",
        ),
        (
            r"^Option '(.+)' requires an argument\.$",
            lambda m: f"L'option {m[1]} attend une valeur.",
        ),
        (
            r"^Option '(.+)' requires (\d+) arguments\.$",
            lambda m: f"L'option {m[1]} attend {m[2]} valeurs.",
        ),
        (
            r"^Option '(.+)' does not take a value\.$",
            lambda m: f"L'option {m[1]} ne prend pas de valeur.",
        ),
        (
            r"^Invalid value for (.+?): (.+)$",
            lambda m: f"Valeur invalide pour {m[1]} : {_value_problem(m[2])}",
        ),
        (r"^Invalid value: (.+)$", lambda m: f"Valeur invalide : {_value_problem(m[1])}"),
    ]
    for pattern, french in patterns:
        if match := re.match(pattern, message, flags=re.DOTALL):
            return french(match)
    return message


def _french_usage(usage: str) -> str:
    return re.sub(r"^(\s*)Usage: ", r"\1Utilisation : ", usage)


class _FrenchMixin:
    def get_usage(self, ctx: Any) -> str:
        return _french_usage(super().get_usage(ctx))  # type: ignore[misc]

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP_TEXT
        return option


class FrenchCommand(_FrenchMixin, TyperCommand):
    pass


class FrenchGroup(_FrenchMixin, TyperGroup):
    """The root of the command line: translates usage errors, turns TiflowError into exit 1."""

    command_class = FrenchCommand

    def __init__(self, **attrs: Any) -> None:
        if attrs.get("subcommand_metavar") is None:
            attrs["subcommand_metavar"] = SUBCOMMAND_METAVAR
        super().__init__(**attrs)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except TiflowError as error:
            show_error(error)
            sys.exit(USER_ERROR)
        except typer.Abort:
            err_console.print(rich_utils.ABORTED_TEXT, style="red")
            sys.exit(USER_ERROR)
        except typer.TyperException as error:  # Typer's ClickException: a usage error
            _show_usage_error(error)
            sys.exit(getattr(error, "exit_code", USAGE_ERROR))
        sys.exit(result if isinstance(result, int) else 0)


def show_error(error: TiflowError) -> None:
    if isinstance(error, InvalidInput):
        err_console.print(
            f"[bold red]Erreur[/] : {plural(len(error.problems), 'problème', 'problèmes')} :"
        )
        for problem in error.problems:
            err_console.print(f"  • {escape(problem)}", soft_wrap=True)
    else:
        err_console.print(f"[bold red]Erreur[/] : {escape(str(error))}", soft_wrap=True)


def _show_usage_error(error: typer.TyperException) -> None:
    ctx = getattr(error, "ctx", None)
    if type(error).__name__ == "NoArgsIsHelpError":
        return  # the help was printed already
    if ctx is not None:
        err_console.print(escape(ctx.get_usage()), highlight=False)
        err_console.print(f"Aide : {escape(ctx.command_path)} --help", style="dim")
    err_console.print(
        f"[bold red]Erreur[/] : {escape(translate(error.format_message()))}", soft_wrap=True
    )
