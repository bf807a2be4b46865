"""Run a coordinator's flow by hand (to serve them for Prefect's UI forms: `tiflow serve`).

python -m flows --liste
python -m flows tenir-copil decisions.json        # a JSON file with the form's fields
python -m flows demarrer '{"number": "FA-07"}'    # or the JSON itself, or - for stdin
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from prefect.exceptions import ParameterTypeError

from flows.copil import hold_copil, hold_copil_interactively, schedule_copil
from flows.funding import record_funding
from flows.progress import abandon_action, complete_action, report_progress, start_action
from flows.proposals import propose_action
from models.errors import TiflowError

FLOWS: dict[str, Any] = {
    "proposer": propose_action,
    "planifier-copil": schedule_copil,
    "tenir-copil": hold_copil,
    "saisir-copil": hold_copil_interactively,
    "financer": record_funding,
    "avancement": report_progress,
    "demarrer": start_action,
    "terminer": complete_action,
    "abandonner": abandon_action,
}


def parameter_name(flow: Any) -> str:
    """Each of these flows takes exactly one parameter: its form."""
    (name,) = inspect.signature(flow.fn).parameters
    return name


def read_form(source: str) -> dict[str, Any]:
    if source == "-":
        text = sys.stdin.read()
    elif source.lstrip().startswith("{"):
        text = source
    else:
        text = Path(source).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("le formulaire doit être un objet JSON { ... }")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows",
        description="Lance à la main un flux du cycle de vie des actions (Prefect).",
    )
    parser.add_argument("--liste", action="store_true", help="liste les flux et leur formulaire")
    parser.add_argument("flux", nargs="?", help="nom court du flux (voir --liste)")
    parser.add_argument("formulaire", nargs="?", help="fichier JSON, JSON en ligne, ou -")
    args = parser.parse_args(argv)
    if args.liste or not args.flux:
        for key, flow in FLOWS.items():
            print(f"{key:16} {flow.name}")
        return 0
    if args.flux not in FLOWS:
        parser.error(f"flux inconnu : {args.flux} (voir --liste)")
    flow = FLOWS[args.flux]
    try:
        form = read_form(args.formulaire or "{}")
    except (OSError, ValueError) as error:
        print(f"Formulaire illisible : {error}", file=sys.stderr)
        return 2
    try:
        flow(**{parameter_name(flow): form})
    except TiflowError as error:
        print(f"Échec : {error}", file=sys.stderr)
        return 1
    except ParameterTypeError as error:
        print(f"Formulaire invalide : {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
