"""``setia analytics ...``: fit and score BTYD models on a transactions file, no service needed."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from setia.core.errors import SetiaError

if TYPE_CHECKING:
    from setia.analytics import models
    from setia.analytics.summary import Summary, Transactions

# NumPy, SciPy and the models are imported inside the commands: every other ``setia``
# command would otherwise pay for importing SciPy (about 0.4 s).

app = typer.Typer(
    help="Customer analytics on a transactions file: BG/NBD, Pareto/NBD, Gamma-Gamma, CLV.",
    no_args_is_help=True,
)

TransactionsOpt = Annotated[
    Path,
    typer.Option(
        "--transactions",
        exists=True,
        dir_okay=False,
        readable=True,
        help="Transactions: CSV (any delimiter, header or not) or Parquet (by extension or content)",
    ),
]
CustomerCol = Annotated[
    str, typer.Option("--customer-col", help="Customer column: name, or 0-based index")
]
DateCol = Annotated[str, typer.Option("--date-col", help="Date column: name, or 0-based index")]
AmountCol = Annotated[
    str | None, typer.Option("--amount-col", help="Amount column (enables spend and CLV)")
]
CalibrationEnd = Annotated[
    str | None,
    typer.Option(
        "--calibration-end",
        help="Last day of the calibration period, YYYY-MM-DD (default: the last date in the file)",
    ),
]
ModelOpt = Annotated[str, typer.Option("--model", help="bgnbd or pareto")]
UnitOpt = Annotated[str, typer.Option("--time-unit", help="week or day")]
DateFormat = Annotated[
    str | None,
    typer.Option("--date-format", help="strptime format, e.g. %Y%m%d (default: ISO or YYYYMMDD)"),
]
DecimalComma = Annotated[
    bool,
    typer.Option(
        "--decimal-comma", help="Amounts like 1.234.567,50 (dot thousands, comma decimals)"
    ),
]
SkipBad = Annotated[
    bool,
    typer.Option("--skip-bad-rows", help="Drop bad rows (reported on stderr) instead of failing"),
]


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _load(
    transactions: Path,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    calibration_end: str | None,
    model: str,
    time_unit: str,
    date_format: str | None,
    skip_bad_rows: bool,
    decimal_comma: bool,
) -> tuple[Transactions, Summary]:
    from setia.analytics import models
    from setia.analytics.summary import UNITS, read_transactions, summarise

    if model not in models.MODELS:
        _fail(f"--model must be one of {', '.join(models.MODELS)}")
    if time_unit not in UNITS:
        _fail(f"--time-unit must be one of {', '.join(UNITS)}")
    end: dt.date | None = None
    if calibration_end is not None:
        try:
            end = dt.date.fromisoformat(calibration_end)
        except ValueError:
            _fail(f"--calibration-end {calibration_end!r} is not a YYYY-MM-DD date")
    try:
        tx = read_transactions(
            transactions,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            date_format=date_format,
            skip_bad_rows=skip_bad_rows,
            decimal_comma=decimal_comma,
        )
        summary = summarise(tx, unit=time_unit, calibration_end=end)
    except SetiaError as exc:
        _fail(exc.detail)
    for bad in tx.bad_rows[:20]:
        typer.echo(f"skipped {tx.row_word} {bad.line}: {bad.reason}", err=True)
    if len(tx.bad_rows) > 20:
        typer.echo(f"... and {len(tx.bad_rows) - 20} more skipped rows", err=True)
    return tx, summary


def _fit_all(
    summary: Summary, model: str, with_spend: bool
) -> tuple[models.Fit, models.Fit | None]:
    from setia.analytics import models

    try:
        fit = models.fit_model(model, summary.x, summary.t_x, summary.T)
    except SetiaError as exc:
        _fail(exc.detail)
    spend: models.Fit | None = None
    if with_spend:
        try:
            spend = models.fit_gamma_gamma(summary.x, summary.monetary)
        except SetiaError as exc:
            # the purchase model still stands; spend and CLV are left out
            typer.echo(f"warning: no spend model: {exc.detail}", err=True)
    return fit, spend


def _fit_json(fit: models.Fit) -> dict[str, Any]:
    return {
        "params": fit.params,
        "log_likelihood": fit.log_likelihood,
        "converged": fit.converged,
        "iterations": fit.iterations,
        "at_bound": fit.at_bound,
    }


@app.command("fit")
def fit_command(
    transactions: TransactionsOpt,
    customer_col: CustomerCol,
    date_col: DateCol,
    amount_col: AmountCol = None,
    calibration_end: CalibrationEnd = None,
    model: ModelOpt = "bgnbd",
    time_unit: UnitOpt = "week",
    date_format: DateFormat = None,
    skip_bad_rows: SkipBad = False,
    decimal_comma: DecimalComma = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="python (default), or spark: Spark (local mode) reads and summarises the "
            "file (CSV with a header, or Parquet); only the sufficient statistics come back",
        ),
    ] = "python",
) -> None:
    """Fit the purchase model (and Gamma-Gamma when amounts are given); print parameters."""
    from setia.analytics.summary import compress

    started = time.perf_counter()
    if engine != "python":
        _print_fit(
            *_fit_on_engine(
                engine, transactions, customer_col, date_col, amount_col, calibration_end,
                model, time_unit, date_format, skip_bad_rows, decimal_comma, started,
            ),
            as_json,
        )  # fmt: skip
        return
    tx, summary = _load(
        transactions,
        customer_col,
        date_col,
        amount_col,
        calibration_end,
        model,
        time_unit,
        date_format,
        skip_bad_rows,
        decimal_comma,
    )
    fit, spend = _fit_all(summary, model, amount_col is not None)
    out: dict[str, Any] = {
        "model": model,
        **_fit_json(fit),
        "data": {
            "transactions": len(tx),
            "bad_rows_skipped": len(tx.bad_rows),
            "customers": len(summary),
            "repeat_customers": summary.repeat_customers,
            "distinct_rows": len(compress(summary.x, summary.t_x, summary.T)),
            "time_unit": time_unit,
            "period_start": summary.period_start.isoformat(),
            "period_end": summary.period_end.isoformat(),
        },
        "spend": None if spend is None else {"model": "gamma_gamma", **_fit_json(spend)},
        "seconds": round(time.perf_counter() - started, 3),
    }
    _print_fit(out, fit, spend, as_json)


def _fit_on_engine(
    engine: str,
    transactions: Path,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    calibration_end: str | None,
    model: str,
    time_unit: str,
    date_format: str | None,
    skip_bad_rows: bool,
    decimal_comma: bool,
    started: float,
) -> tuple[dict[str, Any], models.Fit, models.Fit | None]:
    """``fit --engine spark``: the summary is computed by Spark (setia.analytics.engine)."""
    from setia.analytics import engine as engines
    from setia.analytics import models

    if engine != "spark":
        _fail("--engine must be python or spark")
    if date_format is not None or decimal_comma:
        _fail("--date-format and --decimal-comma need the default engine (--engine python)")
    if model not in models.MODELS:
        _fail(f"--model must be one of {', '.join(models.MODELS)}")
    end: dt.date | None = None
    if calibration_end is not None:
        try:
            end = dt.date.fromisoformat(calibration_end)
        except ValueError:
            _fail(f"--calibration-end {calibration_end!r} is not a YYYY-MM-DD date")
    try:
        fs = engines.summarise_file(
            engines.spark_backend(),
            str(transactions),
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            calibration_end=end,
            unit=time_unit,
            skip_bad_rows=skip_bad_rows,
        )
        s = fs.stats
        fitter = models.fit_bgnbd if model == "bgnbd" else models.fit_pareto
        fit = fitter(s.x, s.t_x, s.T, s.weight)
    except SetiaError as exc:
        _fail(exc.detail)
    if fs.bad_rows:
        typer.echo(f"skipped {fs.bad_rows} bad row(s)", err=True)
    spend: models.Fit | None = None
    if amount_col is not None:
        try:
            spend = models.fit_gamma_gamma(fs.spend_x, fs.spend_mean)
        except SetiaError as exc:
            typer.echo(f"warning: no spend model: {exc.detail}", err=True)
    out: dict[str, Any] = {
        "model": model,
        **_fit_json(fit),
        "data": {
            "transactions": fs.transactions,
            "bad_rows_skipped": fs.bad_rows,
            "customers": fs.customers,
            "repeat_customers": fs.repeat_customers,
            "distinct_rows": len(s),
            "time_unit": time_unit,
            "period_start": None if fs.period_start is None else fs.period_start.isoformat(),
            "period_end": None if fs.period_end is None else fs.period_end.isoformat(),
            "engine": engine,
        },
        "spend": None if spend is None else {"model": "gamma_gamma", **_fit_json(spend)},
        "seconds": round(time.perf_counter() - started, 3),
    }
    return out, fit, spend


def _print_fit(
    out: dict[str, Any], fit: models.Fit, spend: models.Fit | None, as_json: bool
) -> None:
    model, time_unit = out["model"], out["data"]["time_unit"]
    for f in (fit, spend):
        if f is not None and f.at_bound:
            typer.echo(
                f"warning: {f.model} parameter(s) {', '.join(f.at_bound)} at the search bound: "
                "the data do not identify them",
                err=True,
            )
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"{model}: " + ", ".join(f"{k}={v:.4f}" for k, v in fit.params.items()))
    typer.echo(
        f"log-likelihood {fit.log_likelihood:.3f} ({'converged' if fit.converged else 'NOT converged'})"
    )
    if spend is not None:
        typer.echo("gamma-gamma: " + ", ".join(f"{k}={v:.4f}" for k, v in spend.params.items()))
    d = out["data"]
    typer.echo(
        f"{d['customers']} customers ({d['repeat_customers']} repeat, {d['distinct_rows']} distinct rows), "
        f"{d['period_start']}..{d['period_end']}, unit {time_unit}"
    )


@app.command("score")
def score_command(
    transactions: TransactionsOpt,
    customer_col: CustomerCol,
    date_col: DateCol,
    amount_col: AmountCol = None,
    calibration_end: CalibrationEnd = None,
    model: ModelOpt = "bgnbd",
    time_unit: UnitOpt = "week",
    date_format: DateFormat = None,
    skip_bad_rows: SkipBad = False,
    decimal_comma: DecimalComma = False,
    horizon: Annotated[
        float, typer.Option("--horizon", min=0.0, help="Periods ahead for expected purchases")
    ] = 52.0,
    months: Annotated[int, typer.Option("--months", min=1, help="CLV horizon in months")] = 12,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", min=0.0, help="Monthly discount rate for CLV")
    ] = 0.01,
    out: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "--out",
            dir_okay=False,
            help="FILE.csv or FILE.parquet (by extension; default: CSV on stdout)",
        ),
    ] = None,
    loyal_min_days: Annotated[
        int | None, typer.Option(help="Label N: purchase days of a repeat buyer")
    ] = None,
    loyal_min_tenure_days: Annotated[
        int | None, typer.Option(help="Label M: days since the first purchase")
    ] = None,
    active_p_alive: Annotated[
        float | None, typer.Option(help="Label p: P(alive) that is still active")
    ] = None,
    active_days: Annotated[
        int | None, typer.Option(help="Label K: or a purchase within K days")
    ] = None,
    new_days: Annotated[
        int | None, typer.Option(help="Label D: first purchase fewer than D days ago")
    ] = None,
    lost_days: Annotated[
        int | None, typer.Option(help="Label L: no purchase for L days is lost")
    ] = None,
    lost_p_alive: Annotated[
        float | None, typer.Option(help="Label q: P(alive) below q is lost")
    ] = None,
) -> None:
    """Write per-customer P(alive), expected purchases, expected spend, CLV, RFM scores and
    segment, and the happy-vs-loyal label, as CSV or Parquet. Label thresholds default to
    the service's defaults (setia.analytics.labels.Thresholds)."""
    from setia.analytics import files, labels, scoring

    given: dict[str, Any] = {
        "loyal_min_days": loyal_min_days,
        "loyal_min_tenure_days": loyal_min_tenure_days,
        "active_p_alive": active_p_alive,
        "active_days": active_days,
        "new_days": new_days,
        "lost_days": lost_days,
        "lost_p_alive": lost_p_alive,
    }
    try:
        th = labels.Thresholds(**{k: v for k, v in given.items() if v is not None})
    except SetiaError as exc:
        _fail(exc.detail)
    _tx, summary = _load(
        transactions,
        customer_col,
        date_col,
        amount_col,
        calibration_end,
        model,
        time_unit,
        date_format,
        skip_bad_rows,
        decimal_comma,
    )
    del _tx  # the rows are summarised: free them before scoring (10M customers: ~360 MB)
    fit, spend = _fit_all(summary, model, amount_col is not None)
    table = scoring.score_table(
        summary,
        fit,
        spend,
        has_amounts=amount_col is not None,
        options=scoring.ScoreOptions(
            horizon=horizon, months=months, discount_rate=discount_rate, thresholds=th
        ),
    )
    if out is None:
        sys.stdout.flush()
        files.write_csv(table, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    try:
        fmt = files.write_table(table, out)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror}")
    typer.echo(f"{len(summary)} customers scored into {out} ({fmt})", err=True)


def _num(value: Any) -> str:
    return f"{float(value):.6g}"


# --------------------------------------------------------------------------- KPIs (service DB)

TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant id")]
ProgramOpt = Annotated[
    str | None, typer.Option("--program", help="Program id (default: the tenant's default)")
]
CsvOpt = Annotated[bool, typer.Option("--csv", help="CSV instead of JSON")]


def _kpi_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """The KPI report flattened to (metric, value) rows for CSV."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend((f"{key}.{k}", v) for k, v in value.items())
        else:
            rows.append((key, value))
    return rows


@app.command("kpis")
def kpis_command(
    tenant: TenantOpt,
    from_: Annotated[str, typer.Option("--from", help="First local day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="Last local day (inclusive), YYYY-MM-DD")],
    program: ProgramOpt = None,
    as_csv: CsvOpt = False,
) -> None:
    """Active/new/returning members, repeat rate, frequency, AOV, retention, churn, points
    issued/redeemed/expired over local days (tenant's time zone), from the service database."""
    from setia import cli
    from setia.analytics import kpis

    try:
        start = kpis.parse_day(from_, "from")
        end = kpis.parse_day(to, "to")
        kpis.check_period(start, end)
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            data = kpis.kpis(session, t, p, start=start, end=end)
    except SetiaError as exc:
        cli.fail(exc.detail, 2)
    if not as_csv:
        cli.emit(data)
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(("metric", "value"))
    writer.writerows((k, "" if v is None else v) for k, v in _kpi_rows(data))


@app.command("cohorts")
def cohorts_command(
    tenant: TenantOpt,
    from_month: Annotated[str, typer.Option("--from-month", help="First cohort month, YYYY-MM")],
    to_month: Annotated[str, typer.Option("--to-month", help="Last month observed, YYYY-MM")],
    program: ProgramOpt = None,
    as_csv: CsvOpt = False,
) -> None:
    """Cohort retention matrix by local month of first purchase, from the service database."""
    from setia import cli
    from setia.analytics import kpis

    try:
        first = kpis.parse_month(from_month, "from_month")
        last = kpis.parse_month(to_month, "to_month")
        kpis.check_months(first, last)
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            data = kpis.cohorts(session, t, p, first_month=first, last_month=last)
    except SetiaError as exc:
        cli.fail(exc.detail, 2)
    if not as_csv:
        cli.emit(data)
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(("cohort", "size", "offset", "month", "members", "share"))
    for row in data["cohorts"]:
        for m in row["months"]:
            writer.writerow(
                (row["cohort"], row["size"], m["offset"], m["month"], m["members"], m["share"])
            )


RFM_COLUMNS = (
    "member_id",
    "segment",
    "r",
    "f",
    "m",
    "recency_days",
    "orders",
    "spend",
    "refunds",
    "x",
    "t_x",
    "T",
    "monetary",
    "p_alive",
    "expected_purchases",
    "clv",
)


@app.command("rfm")
def rfm_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id")],
    program: Annotated[
        str | None, typer.Option("--program", help="Program id (default: the tenant's default)")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the period, ISO time with offset (default: now)"),
    ] = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="One CSV row per member with a purchase, to stdout")
    ] = False,
) -> None:
    """RFM segments of a program from the service's orders (JSON report, or CSV per member)."""
    from setia.analytics import members as service
    from setia.analytics.api import RfmReportOut, fit_out, segment_report
    from setia.cli import ready_db, tenant_and_program

    end: dt.datetime | None = None
    if as_of is not None:
        try:
            end = dt.datetime.fromisoformat(as_of)
        except ValueError:
            _fail(f"--as-of {as_of!r} is not an ISO time, e.g. 2026-03-01T00:00:00+07:00")
    db = ready_db()
    with db.session() as session:
        try:
            t, p = tenant_and_program(session, tenant, program)
            a = service.analyse(session, t, p, as_of=end)
        except SetiaError as exc:
            _fail(exc.detail)
    pr = a.predictions
    if not as_csv:
        report = RfmReportOut(
            program_id=p.id,
            as_of=a.summary.as_of,
            timezone=a.summary.timezone,
            members=len(a.purchasers),
            segments=segment_report(a),
            fit=fit_out(pr.fit),
            spend_fit=fit_out(pr.spend_fit),
            predictions_missing=pr.reason,
            spend_missing=pr.spend_reason,
        )
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(RFM_COLUMNS)
    s = a.scores
    for i, row in enumerate(a.purchasers):
        writer.writerow(
            (
                row.member_id,
                s.segments[i],
                int(s.r[i]),
                int(s.f[i]),
                int(s.m[i]),
                int(s.recency_days[i]),
                row.orders,
                row.spend,
                row.refunds,
                int(row.x),
                _num(row.t_x),
                _num(row.T),
                _num(row.monetary),
                "" if pr.p_alive is None else _num(pr.p_alive[i]),
                "" if pr.expected_purchases is None else _num(pr.expected_purchases[i]),
                "" if pr.clv is None else _num(pr.clv[i]),
            )
        )


LABEL_COLUMNS = (
    "member_id",
    "label",
    "loyalty_type",
    "habitual",
    "transactional",
    "emotional",
    "purchase_days",
    "recency_days",
    "tenure_days",
    "p_alive",
)


@app.command("labels")
def labels_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id")],
    program: Annotated[
        str | None, typer.Option("--program", help="Program id (default: the tenant's default)")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the period, ISO time with offset (default: now)"),
    ] = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="One CSV row per member (label, type, scores)")
    ] = False,
    loyal_min_days: Annotated[int, typer.Option(help="N: purchase days of a repeat buyer")] = 3,
    loyal_min_tenure_days: Annotated[int, typer.Option(help="M: days since first purchase")] = 30,
    active_p_alive: Annotated[float, typer.Option(help="p: P(alive) that is still active")] = 0.5,
    active_days: Annotated[int, typer.Option(help="K: or a purchase within K days")] = 45,
    new_days: Annotated[int, typer.Option(help="D: first purchase fewer than D days ago")] = 30,
    lost_days: Annotated[int, typer.Option(help="L: no purchase for L days is lost")] = 180,
    lost_p_alive: Annotated[float, typer.Option(help="q: P(alive) below q is lost; 0 = off")] = 0.0,
    primary_min_score: Annotated[float, typer.Option(help="Score a primary type needs")] = 0.5,
) -> None:
    """Happy-vs-loyal labels and loyalty types of a program's members (JSON counts or CSV)."""
    from setia.analytics import labels
    from setia.analytics import members as service
    from setia.cli import ready_db, tenant_and_program

    end: dt.datetime | None = None
    if as_of is not None:
        try:
            end = dt.datetime.fromisoformat(as_of)
        except ValueError:
            _fail(f"--as-of {as_of!r} is not an ISO time, e.g. 2026-03-01T00:00:00+07:00")
    db = ready_db()
    with db.session() as session:
        try:
            th = labels.Thresholds(
                loyal_min_days=loyal_min_days,
                loyal_min_tenure_days=loyal_min_tenure_days,
                active_p_alive=active_p_alive,
                active_days=active_days,
                new_days=new_days,
                lost_days=lost_days,
                lost_p_alive=lost_p_alive,
                primary_min_score=primary_min_score,
            )
            t, p = tenant_and_program(session, tenant, program)
            a = service.analyse(session, t, p, as_of=end)
            labelled = labels.classify(session, a, th)
        except SetiaError as exc:
            _fail(exc.detail)
    if not as_csv:
        report = {
            "program_id": str(p.id),
            "as_of": a.summary.as_of.isoformat(),
            "timezone": a.summary.timezone,
            "members": len(labelled),
            **labels.counts(labelled),
            "thresholds": th.as_dict(),
            "predictions_missing": a.predictions.reason,
        }
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for m in labelled.values():
        ev = m.evidence
        writer.writerow(
            (
                m.member_id,
                m.label,
                m.primary,
                _num(m.scores["habitual"]),
                _num(m.scores["transactional"]),
                _num(m.scores["emotional"]),
                ev["purchase_days"],
                "" if ev["recency_days"] is None else ev["recency_days"],
                "" if ev["tenure_days"] is None else ev["tenure_days"],
                "" if ev["p_alive"] is None else _num(ev["p_alive"]),
            )
        )


# Stored scores and per-tenant settings (setia.analytics.store_cli).
from setia.analytics.store_cli import recompute_command, settings_command  # noqa: E402

app.command("recompute")(recompute_command)
app.command("settings")(settings_command)


@app.command("evaluate-demo")
def evaluate_demo_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id (the demo's)")],
    program: Annotated[
        str | None, typer.Option("--program", help="Program id (default: the tenant's default)")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the period, ISO time with offset (default: now)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables")] = False,
) -> None:
    """Precision, recall and confusion matrices of the labels and loyalty types against the
    demo's known personas (setia.analytics.evaluate)."""
    from setia.analytics import evaluate
    from setia.cli import ready_db, tenant_and_program

    end: dt.datetime | None = None
    if as_of is not None:
        try:
            end = dt.datetime.fromisoformat(as_of)
        except ValueError:
            _fail(f"--as-of {as_of!r} is not an ISO time, e.g. 2026-03-01T00:00:00+07:00")
    with ready_db().session() as session:
        try:
            t, p = tenant_and_program(session, tenant, program)
            report = evaluate.evaluate(session, t, p, as_of=end)
        except SetiaError as exc:
            _fail(exc.detail)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        typer.echo(evaluate.render(report), nl=False)
