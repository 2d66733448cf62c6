"""``infratech e2e STACK``: what it says before anything is created (the dry run, the cost of the
run from the catalog, ``--yes`` required) and its bad input (exit 2, the flag named, no traceback)."""

from __future__ import annotations

import pytest

from infratech import catalog, cli
from infratech.cli import deploy
from infratech.cli.commands import e2e as e2e_command
from infratech.cli.e2e import phases as e2e_phases
from infratech.cli.e2e.estimate import estimate
from infratech.cli.e2e.model import PHASES
from infratech.cli.stacks import stack_config


@pytest.fixture
def nothing_created(monkeypatch, tmp_path):
    """Any step that would reach the Pulumi CLI or a cluster fails the test; reports go to tmp_path."""
    def refuse(*args, **kwargs):
        raise AssertionError("the e2e reached the Pulumi CLI or the cluster")

    monkeypatch.setattr(deploy, "_automation", refuse)
    monkeypatch.setattr(deploy, "require_pulumi_cli", refuse)
    monkeypatch.setattr(e2e_phases, "_kube", refuse)
    monkeypatch.setattr(e2e_command, "REPORTS", tmp_path / "e2e")
    return tmp_path / "e2e"


def _minutes():
    return sum(p.usual_min for p in PHASES if p.billable)


def test_the_cost_of_a_run_should_be_the_catalogs_prices_times_nodes_times_the_usual_duration(project):
    cat = catalog.load()
    hours = _minutes() / 60
    h100, l40s = cat.offer("ovh", "h100-380").eur_per_hour, cat.offer("ovh", "l40s-90").eur_per_hour
    est = estimate(stack_config(project, "ovh-gra11"))
    by_pool = {p["name"]: p for p in est.pools}
    assert by_pool["h100"]["eur"] == round(2 * h100 * hours, 2)
    assert by_pool["l40s"]["eur"] == round(1 * l40s * hours, 2)
    # b3-16 has no price in the catalog: unknown, never counted as 0
    assert cat.offer("ovh", "b3-16") is None or cat.offer("ovh", "b3-16").eur_per_hour is None
    assert by_pool["system"]["eur"] is None and est.unknown == ("system",) and not est.complete
    assert est.eur_known == pytest.approx(2 * h100 * hours + l40s * hours)


def test_the_dry_run_should_print_phases_checks_durations_and_cost_and_create_nothing(nothing_created, capsys, project):
    assert cli.main(["e2e", "ovh-gra11", "--dry-run", "--timeout", "work=45"]) == 0
    out = capsys.readouterr().out
    for spec in PHASES:
        assert f"{spec.name}: {spec.does} (usually {spec.usual_min:g} min" in out
        for check in spec.checks:
            assert f"checks: {check}" in out
        for gap in spec.not_checked:
            assert f"not checked by this version: {gap}" in out
    assert "timeout 45 min" in out
    est = estimate(stack_config(project, "ovh-gra11"))
    assert f"total: at least {est.eur_known:,.2f} EUR for {_minutes():g} min; prices unknown for: system" in out
    assert "pool system: 3 node(s) x unknown" in out
    assert not nothing_created.exists()


def test_a_run_without_yes_should_exit_2_saying_what_it_would_cost(nothing_created, capsys):
    assert cli.main(["e2e", "ovh-gra11"]) == 2
    err = capsys.readouterr().err
    assert "creates billable resources" in err and "--yes" in err and "EUR" in err and "--dry-run" in err
    assert not nothing_created.exists()


@pytest.mark.parametrize("argv, words", [
    (["--timeout", "deploy=10"], "--timeout 'deploy=10': unknown phase 'deploy'; allowed: plan, up, platform, gpu-health, work, teardown"),
    (["--timeout", "up=soon"], "--timeout 'up=soon': minutes must be a number above 0"),
    (["--timeout", "up=0"], "--timeout 'up=0': minutes must be a number above 0"),
    (["--timeout", "up=-5"], "--timeout 'up=-5': minutes must be a number above 0"),
    (["--timeout", "up=nan"], "--timeout 'up=nan': minutes must be a number above 0"),
    (["--timeout", "up"], "--timeout 'up': expected PHASE=MINUTES"),
])
def test_a_bad_timeout_should_exit_2_naming_the_flag_and_what_is_allowed(nothing_created, capsys, argv, words):
    assert cli.main(["e2e", "ovh-gra11", "--yes", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_an_unknown_stack_should_exit_2_listing_the_stacks(nothing_created, capsys):
    assert cli.main(["e2e", "ovh-gra12", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown stack 'ovh-gra12'" in err and "ovh-gra11" in err and "Traceback" not in err


def test_the_report_schema_should_refuse_what_the_report_never_holds():
    import jsonschema

    from infratech.cli.e2e.report import SCHEMA, VERSION

    phase = {"name": "up", "status": "passed", "started": None, "seconds": 1.0, "timeout_min": None,
             "checks": [{"name": "x", "ok": True, "evidence": "y"}], "not_checked": [], "error": None}
    doc = {"schema": VERSION, "stack": "ovh-gra11", "started": "t", "finished": "t", "result": "passed",
           "failed_phase": None, "options": {"keep": False, "teardown_on_failure": False, "timeouts_min": {}},
           "estimate": None, "phases": [phase], "cleanup": None}
    jsonschema.validate(doc, SCHEMA)
    for bad in ({**doc, "phases": [{**phase, "status": "ok"}]}, {**doc, "phases": [{**phase, "name": "deploy"}]},
                {**doc, "result": "maybe"}, {k: v for k, v in doc.items() if k != "cleanup"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)
