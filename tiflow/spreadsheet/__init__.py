"""The action plan as a spreadsheet: import (checked, all or nothing), export, blank template.

    from tiflow.spreadsheet import export_plan, import_plan, write_template

    with UnitOfWork(engine) as uow:
        report = import_plan(uow, Path("plan.xlsx"), territory="grand-est-touraine")
        uow.commit()                      # skip the commit for a dry run
    print(report.summary())

    with UnitOfWork(engine) as uow:
        export_plan(uow, "grand-est-touraine", Path("plan.xlsx"))   # or .csv

The format (sheets, French headers, accepted values) is defined once in `layout.py`.
"""

from tiflow.spreadsheet.exporting import (
    ExportSummary,
    export_plan,
    plan_from_database,
    write_plan,
    write_template,
)
from tiflow.spreadsheet.importing import Change, EntityChange, ImportReport, import_plan
from tiflow.spreadsheet.progress import NO_PROGRESS, Progress

__all__ = [
    "NO_PROGRESS",
    "Change",
    "EntityChange",
    "ExportSummary",
    "ImportReport",
    "Progress",
    "export_plan",
    "import_plan",
    "plan_from_database",
    "write_plan",
    "write_template",
]
