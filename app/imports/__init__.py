"""CSV imports of users (docs/import.md): a file parsed and checked into a job's rows (the
preview), then run a batch per transaction through the provisioning service, by the worker
or by `run_import`. The job tables are this package's; every change to the directory goes
through `ProvisioningService.import_users`."""

from app.imports.csvfile import CsvFileError
from app.imports.jobs import (
    create_job,
    failed_rows,
    get_job,
    list_jobs,
    result_lines,
    start_job,
)
from app.imports.runner import BATCH_SIZE, run_import, step, work_once

__all__ = [
    "BATCH_SIZE",
    "CsvFileError",
    "create_job",
    "failed_rows",
    "get_job",
    "list_jobs",
    "result_lines",
    "run_import",
    "start_job",
    "step",
    "work_once",
]
