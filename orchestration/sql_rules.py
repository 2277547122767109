"""The dbt project's field rules, rendered for Python: one home for each parsing rule.

The macros in `dbt_project/macros/raw_fields.sql` say how a raw field is read (the local time
of `callDateTime`, the EMS date and time formats, coordinates, the city's box). Staging models
call them in dbt; the raw checks and the Python steps that read raw tables render the same
macros here with plain Jinja and the project's vars, so a format change is one edit.
"""

from __future__ import annotations

import functools
from typing import Any

import duckdb
import jinja2
import pandas as pd

from orchestration import settings

MACRO_FILE = settings.DBT_PROJECT_DIR / "macros" / "raw_fields.sql"


def _var(name: str, default: Any = None) -> Any:
    values = settings.dbt_vars()
    if name not in values and default is None:
        raise KeyError(f"dbt var {name!r} is not defined in dbt_project.yml")
    return values.get(name, default)


@functools.cache
def _macros() -> Any:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals["var"] = _var
    return env.from_string(MACRO_FILE.read_text()).module


def render(macro: str, *args: str) -> str:
    """The SQL of `macro` (a macro of raw_fields.sql) applied to the given SQL expressions."""
    return str(getattr(_macros(), macro)(*args)).strip()


def call_local_time(column: str = '"callDateTime"') -> str:
    """Local wall-clock TIMESTAMP of the 911 feed's `callDateTime` (epoch ms UTC)."""
    return render("local_time_of_epoch_ms", column)


def ems_date(column: str = '"Incident Date"') -> str:
    """An EMS report date as DATE, NULL when unparseable."""
    return render("ems_date", column)


def coordinate(column: str) -> str:
    """A coordinate as DOUBLE, NULL when it is not a number."""
    return render("coordinate", column)


def inside_city(lat: str, lon: str) -> str:
    """True when the point lies inside the quality gate's box around the city."""
    return render("inside_city", lat, lon)


def _day_by_rule(values: pd.Series, column: str, day_sql: str) -> pd.Series:
    """Evaluate a day rule (SQL over `column`) on a series: midnight Timestamps, NaT where none."""
    frame = pd.DataFrame({column: values.to_numpy()})  # noqa: F841 - DuckDB reads it by name
    days = duckdb.sql(f"select cast({day_sql} as timestamp) as day from frame").df()["day"]
    days.index = values.index
    return days


def local_day_of_epoch_ms(epoch_ms: pd.Series) -> pd.Series:
    """Local calendar day of epoch-millisecond UTC instants, by the rule staging uses, so the
    partition a call is loaded into is the day staging and the checks see."""
    numbers = pd.to_numeric(epoch_ms, errors="coerce").astype("float64")
    return _day_by_rule(numbers, "callDateTime", f"cast({call_local_time()} as date)")


def ems_incident_day(incident_date: pd.Series) -> pd.Series:
    """An EMS `Incident Date` as a day, by the rule staging uses (NaT when unparseable)."""
    return _day_by_rule(incident_date.astype(object), "Incident Date", ems_date())


def name_keys(names: list[str]) -> list[str]:
    """Spelling-insensitive keys of place names, by the `name_key` macro dbt uses (one rule for both)."""
    frame = pd.DataFrame({"name": [str(n) for n in names]})  # noqa: F841 - DuckDB reads it by name
    return duckdb.sql(f"select {render('name_key', 'name')} as key from frame").df()["key"].tolist()
