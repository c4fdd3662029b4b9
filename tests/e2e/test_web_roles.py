"""The page as each role uses it, in Debian's Chromium against the real service on its
built-in simulator (accelerated plant time): the lab technician's sheet upload and result
history, the engineer's calibration, design, approval and stope plan, the cylinders of a
stope against its requirements, and the operator watching a pour whose paste all goes to
the dump. Screenshots of every page go to ``test-output/``.

Cylinders cure in wall time: where a test needs cylinders days old it moves the lab
loop's clock ahead (the service's own clock object), as the stope test moves plant time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from service.api.examples import REQUEST_EXAMPLES
from tests.conftest import KEYS, api_keys_setting, auth
from tests.e2e.helpers import RECIPE
from tests.e2e.web_support import (
    ServiceThread,
    chromium,
    csp_violations,
    login,
    open_page,
    page_errors,
    serving,
    shot,
    until,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.chromium, pytest.mark.slow]

LAB_KEY = "lab-key-0123456789abcdef"
ROLE_KEYS = {**KEYS, "lab": LAB_KEY}
LAB = {"Authorization": f"Bearer {LAB_KEY}"}
CYLINDERS_CSV: str = REQUEST_EXAMPLES["create_calibration"]["csv"]

# Made from a 76 % cake at Bw 4.5 %, asking 76 % Cw: the simulator's feed (72.7-74.6 %
# solids) makes at most about 73.5 % Cw at this Bw, so the recipe is out of the feed's
# reach and every start's paste stays out of spec and goes to the dump.
TOO_DRY: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 76.0,
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceThread]:
    db = tmp_path_factory.mktemp("roles") / "roles.db"
    keys = f"{api_keys_setting()},lab:{LAB_KEY}"
    with serving(f"sqlite+aiosqlite:///{db}", auth("hmi"), api_keys=keys) as svc:
        yield svc


@pytest.fixture(scope="module")
def api(service: ServiceThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=20) as client:
        yield client


@contextmanager
def signed_in(browser: Browser, service: ServiceThread, role: str) -> Iterator[Page]:
    """A page signed in as ``role``; it fails the test on a script error or a refusal of
    the page's Content-Security-Policy."""
    page = open_page(browser, service)
    errors = page_errors(page)
    refused = csp_violations(page)
    try:
        login(page, role, ROLE_KEYS[role])
        yield page
        assert not errors, errors
        assert not refused, refused
    finally:
        page.context.close()


@contextmanager
def lab_clock_at(service: ServiceThread, moment: datetime) -> Iterator[None]:
    """The lab loop's clock (wall time) moved to ``moment`` and moving on from there."""
    lab = service.runtime.lab
    real: Callable[[], datetime] = lab.clock
    offset = moment - real()
    lab.clock = lambda: real() + offset
    try:
        yield
    finally:
        lab.clock = real


def nav(page: Page) -> list[str]:
    return [
        str(a.get_attribute("data-nav")) for a in page.locator("#nav [data-nav]").element_handles()
    ]


def approved_recipe(api: httpx.Client, name: str, mix: dict[str, Any], **extra: Any) -> str:
    r = api.post(
        "/api/v1/recipes",
        json={"name": name, "mix": mix, "approved_by": "E. Engineer", **extra},
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    recipe_id: str = r.json()["id"]
    return recipe_id


# --- the lab ----------------------------------------------------------------------------


def test_a_lab_technician_imports_a_sheet_only_once_every_row_is_good(
    browser: Browser, service: ServiceThread, api: httpx.Client
) -> None:
    recipe_id = approved_recipe(api, "S-500 body", RECIPE)
    samples = ["LAB-1", "LAB-2"]
    made = api.post(
        "/api/v1/pours",
        json={
            "stope_id": "S-500",
            "recipe_id": recipe_id,
            "target_volume_m3": 50.0,
            "paste_flow_m3_h": 90.0,
            "sample_ids": samples,
        },
        headers=auth("scada"),
    )
    assert made.status_code == 201, made.text
    cast = api.get("/api/v1/samples/LAB-1", headers=LAB).json()["cast_at"]
    cast_at = datetime.fromisoformat(cast)
    # A week and a minute later: the 3-day tests are overdue, the 7-day ones due today.
    with (
        lab_clock_at(service, cast_at + timedelta(days=7, minutes=1)),
        signed_in(browser, service, "lab") as page,
    ):
        page.wait_for_selector("#overdue-tests")
        assert nav(page) == ["lab", "samples", "pours", "stopes"]
        assert page.inner_text("#overdue-count") == "2"
        assert page.inner_text("#due-count") == "2"
        for sample in samples:
            assert page.locator(f"#overdue-tests tr[data-sample={sample}][data-age='3']").count()
            assert page.locator(f"#due-tests tr[data-sample={sample}][data-age='7']").count()
        shot(page, "lab-due.png")

        # A sheet with one bad row: nothing imported, the row shown against its line.
        header = "sample_id,cast_at,curing_days,ucs_kpa,wet_mass_g,dry_mass_g"
        bad = f"{header}\nLAB-1,{cast},3,182,1391.0,1057.2\nLAB-2,{cast},3,1x9,1389.5,1056.0\n"
        page.fill("#sheet-form textarea[name=csv]", bad)
        page.click("#import-sheet")
        page.wait_for_selector("#sheet-result[data-imported='0']")
        assert "Nothing was imported" in page.inner_text("#sheet-result")
        row = page.locator("#sheet-errors tr[data-row='3'][data-field=ucs_kpa]")
        assert row.count() == 1 and page.locator("#sheet-errors tbody tr").count() == 1
        assert page.locator("#sheet-lines tr.line.bad").count() == 1
        assert page.get_attribute("#sheet-lines tr.bad", "data-line") == "3"
        assert page.inner_text("#sheet-lines tr.bad .cell.bad") == "1x9"
        assert page.get_attribute("#sheet-lines tr.bad .cell.bad", "data-column") == "ucs_kpa"
        assert api.get("/api/v1/samples/LAB-1", headers=LAB).json()["results"] == []
        assert page.inner_text("#overdue-count") == "2"
        shot(page, "lab-sheet-refused.png")

        # The row corrected: both rows imported, the overdue tests gone.
        page.fill("#sheet-form textarea[name=csv]", bad.replace("1x9", "179"))
        page.click("#import-sheet")
        page.wait_for_selector("#sheet-result[data-imported='2']")
        assert page.locator("#sheet-imported tbody tr").count() == 2
        page.wait_for_selector("#overdue-tests-none")
        assert page.inner_text("#due-count") == "2"
        shot(page, "lab-sheet-imported.png")

        # A result entered with the form from the due list.
        page.click("#due-tests tr[data-sample=LAB-1] button[data-enter]")
        assert page.input_value("#result-form [name=sample_id]") == "LAB-1"
        assert page.input_value("#result-form [name=curing_days]") == "7"
        page.fill("#result-form [name=ucs_kpa]", "241")
        page.click("#result-form button[type=submit]")
        page.wait_for_selector("#result-form .form-done:not([hidden])")
        page.wait_for_function("() => document.querySelector('#due-count').textContent === '1'")

        # The sample's history; a correction is a new entry beside the one it corrects.
        page.goto(service.base_url + "/#/samples/LAB-1")
        page.wait_for_selector("#entries")
        assert page.locator("#entries tbody tr").count() == 2
        three_day = next(
            r
            for r in api.get("/api/v1/samples/LAB-1", headers=LAB).json()["results"]
            if r["curing_days"] == 3
        )
        page.click(f"button[data-correct='{three_day['id']}']")
        page.fill("#correction-form [name=ucs_kpa]", "128")
        page.fill("#correction-form [name=note]", "the 3-day press read in the wrong unit")
        page.click("#correction-form button[type=submit]")
        page.wait_for_selector(f"#entries tr[data-entry='{three_day['id']}'][data-current=false]")
        assert page.locator("#entries tbody tr").count() == 3
        assert "corrected by" in page.inner_text(f"#entries tr[data-entry='{three_day['id']}']")
        history = api.get("/api/v1/samples/LAB-1", headers=LAB).json()["results"]
        (fix,) = [r for r in history if r["corrects"] == three_day["id"]]
        assert fix["ucs_kpa"] == 128 and fix["current"]
        assert "counts" in page.inner_text(f"#entries tr[data-entry='{fix['id']}']")
        shot(page, "lab-sample-history.png")

        # The lab is offered its views only; the plant's says so.
        page.goto(service.base_url + "/#/plant")
        page.wait_for_selector("#not-offered")
        assert page.locator("#trends, [data-trend]").count() == 0


# --- the engineer -----------------------------------------------------------------------


def test_an_engineer_fits_designs_approves_and_plans_a_stope(
    browser: Browser, service: ServiceThread, api: httpx.Client
) -> None:
    with signed_in(browser, service, "engineer") as page:
        page.wait_for_selector("#design-form")  # the engineer's home
        assert nav(page) == [
            "plant",
            "pours",
            "design",
            "recipes",
            "calibrations",
            "stopes",
            "reconciliations",
            "samples",
        ]

        # A calibration fitted from the lab's cylinders: the plot of measured against
        # predicted with each cylinder's band, the residuals, the tested region.
        page.click("[data-nav=calibrations]")
        page.click("#fit-panel summary")
        page.fill("#fit-form [name=name]", "Mine lab 2026-Q4")
        page.fill("#fit-form textarea[name=csv]", CYLINDERS_CSV)
        page.click("#fit")
        page.wait_for_selector("[data-trend=cal-fit] svg.plot[data-markers='20']")
        calibration_id = page.evaluate("location.hash").split("/")[-1]
        fitted = api.get(f"/api/v1/calibrations/{calibration_id}", headers=auth("hmi")).json()
        assert fitted["name"] == "Mine lab 2026-Q4" and fitted["n_rows"] == 20
        assert page.locator("[data-trend=cal-fit] svg .segment.errbar").count() == 20
        assert page.locator("[data-trend=cal-fit] svg .segment.identity").count() == 1
        note = page.inner_text("[data-trend=cal-fit] .plot-note")
        assert "prediction band" in note and "of 20 inside" in note
        assert page.locator("[data-trend=cal-residuals] svg .marker").count() == 20
        assert page.locator("[data-trend=cal-region] svg rect.region").count() == 1
        assert f"{fitted['r2_log']:.3f}" in page.inner_text("#fit-figures")
        assert page.locator("#versions tr[data-version='1']").count() == 1
        shot(page, "calibration.png")

        # A refit on the lab's results (the lab test's cylinders) is proposed: what it
        # changed, then the engineer's approval.
        page.click("#propose")
        page.wait_for_selector("#what-changed")
        assert page.inner_text("#calibration-status") == "proposed"
        proposal = page.evaluate("location.hash").split("/")[-1]
        body = api.get(f"/api/v1/calibrations/{proposal}", headers=auth("hmi")).json()
        assert body["version"] == 2 and body["proposal"]["n_new"] > 0
        assert f"{body['proposal']['n_new']} lab result(s) added" in page.inner_text(
            "#what-changed"
        )
        assert page.locator("#coefficient-changes tbody tr").count() == len(
            body["proposal"]["changes"]
        )
        shot(page, "calibration-proposed.png")
        page.fill("#approve-calibration [name=approved_by]", "Ada Engineer")
        page.click("#approve")
        page.wait_for_function(
            "() => document.querySelector('#calibration-status')?.textContent === 'approved'"
        )
        approved = api.get(f"/api/v1/calibrations/{proposal}", headers=auth("hmi")).json()
        assert approved["approved_by"] == "Ada Engineer"
        assert page.locator("#versions tbody tr").count() == 2

        # The design on it: the optimiser's answer with everything it rests on.
        page.click("[data-nav=design]")
        page.wait_for_selector("#design-form")
        page.select_option("#design-form [name=calibration_id]", calibration_id)
        page.click("#design")
        page.wait_for_selector("#design-result")
        blend = page.inner_text("#design-blend")
        assert "cement" in blend and "slag" in blend
        assert "90 % of cylinders" in page.inner_text("#design-statement")
        passing = [
            float(t.split()[0])
            for t in page.locator("#design-requirements [data-col=pass]").all_inner_texts()
        ]
        assert len(passing) == 2 and min(passing) >= 90.0
        assert page.locator("#design-uncertainty tr[data-part]").count() == 3
        assert "within reach" in page.inner_text("#design-makeability")
        assert page.inner_text("#design-cost-m3") not in ("", "—")
        solids = float(page.get_attribute("#design-result", "data-solids-pct") or "nan")
        assert solids <= 73.7  # the simulator's wettest feed at this Bw
        shot(page, "design.png")

        # Stored and approved at once; a second version stored as a draft, approved on
        # its page.
        page.fill("#store-form [name=name]", "S-800 body")
        page.fill("#store-form [name=approved_by]", "Ada Engineer")
        page.click("#store-recipe")
        page.wait_for_selector("#stored-recipe:not([hidden]) #stored-link")
        assert "approved by Ada Engineer" in page.inner_text("#stored-recipe")
        body_id = (page.get_attribute("#stored-link", "href") or "").split("/")[-1]
        page.fill("#store-form [name=name]", "S-800 plug")
        page.uncheck("#store-form [name=approve_now]")
        page.click("#store-recipe")
        page.wait_for_function(
            "() => document.querySelector('#stored-recipe').textContent.includes('as a draft')"
        )
        page.click("#stored-link")
        page.wait_for_selector("#approve-form")
        assert page.inner_text("#recipe-state") == "draft"
        page.fill("#approve-form [name=approved_by]", "Ada Engineer")
        page.click("#approve")
        page.wait_for_function(
            "() => document.querySelector('#recipe-state')?.textContent === 'approved'"
        )
        assert "Ada Engineer" in page.inner_text("#approved-by")
        plug_id = page.evaluate("location.hash").split("/")[-1]
        assert api.get(f"/api/v1/recipes/{plug_id}", headers=auth("hmi")).json()["approved"]
        shot(page, "recipe-approved.png")

        # A stope and its plan: a plug that cures, then the body.
        page.click("[data-nav=stopes]")
        page.click("#new-stope-panel summary")
        page.fill("#new-stope [name=name]", "S-800")
        page.fill("#new-stope [name=height_m]", "20")
        page.fill("#new-stope [name=plan_area_m2]", "120")
        page.fill("#new-stope [name=barricade_rating_kpa]", "150")
        page.click("#new-stope button[type=submit]")
        page.wait_for_selector("#plan-form")
        stages = page.locator("#plan-stages tr.stage")
        assert stages.count() == 2
        stages.nth(0).locator("[name=recipe_id]").select_option(plug_id)
        stages.nth(1).locator("[name=recipe_id]").select_option(body_id)
        stages.nth(0).locator("[name=top_height_m]").fill("4")
        assert "480.0 m3" in stages.nth(0).locator("[data-col=derived]").inner_text()
        shot(page, "stope-plan-editor.png")
        page.click("#save-plan")
        page.wait_for_selector("#stope-view #stages tr[data-stage=body]")
        assert "plan v1" in page.inner_text("#stope-summary")
        assert "ready" in page.inner_text("#stages tr[data-stage=plug] [data-col=state]")
        assert "plant time" in page.inner_text("#plan-clock")
        shot(page, "stope-planned.png")

        # The plan revised: the body rises faster.
        page.click("#edit-plan")
        page.wait_for_selector("#plan-form")
        page.locator("#plan-stages tr.stage").nth(1).locator("[name=max_rise_rate_m_h]").fill("1.5")
        page.click("#save-plan")
        page.wait_for_function(
            "() => document.querySelector('#stope-summary')?.textContent.includes('plan v2')"
        )
        stope_id = page.evaluate("location.hash").split("/")[-1]
        stope = api.get(f"/api/v1/stopes/{stope_id}", headers=auth("hmi")).json()
        assert stope["plan_version"] == 2
        assert [s["max_rise_rate_m_h"] for s in stope["stages"]] == [0.5, 1.5]
        assert [s["recipe_id"] for s in stope["stages"]] == [plug_id, body_id]


def test_an_approval_names_the_signed_in_person_when_the_credential_does(
    browser: Browser, service: ServiceThread, api: httpx.Client
) -> None:
    """A credential that names its person (``name`` in /whoami) fills the approver and
    shows the person in the header: /whoami's answer is given the name here."""
    draft = api.post(
        "/api/v1/recipes", json={"name": "S-801 body", "mix": RECIPE}, headers=auth("engineer")
    )
    assert draft.status_code == 201, draft.text
    page = open_page(browser, service)
    try:
        page.route(
            "**/api/v1/whoami",
            lambda route: route.fulfill(json={"role": "engineer", "name": "Grace Hopper"}),
        )
        login(page, "engineer", KEYS["engineer"])
        assert page.inner_text("#person-name") == "Grace Hopper"
        page.goto(f"{service.base_url}/#/recipes/{draft.json()['id']}")
        page.wait_for_selector("#approve-form")
        field = "#approve-form [name=approved_by]"
        assert page.input_value(field) == "Grace Hopper"
        assert page.get_attribute(field, "readonly") is not None
    finally:
        page.context.close()


def test_the_cylinders_of_a_stope_stand_against_its_requirements(
    browser: Browser, service: ServiceThread, api: httpx.Client
) -> None:
    cal = api.post(
        "/api/v1/calibrations",
        json={**REQUEST_EXAMPLES["create_calibration"], "name": "S-900 lab"},
        headers=auth("engineer"),
    )
    assert cal.status_code == 201, cal.text
    recipe_id = approved_recipe(api, "S-900 plug", RECIPE, calibration_id=cal.json()["id"])
    stope = api.post(
        "/api/v1/stopes",
        json={
            "name": "S-900",
            "plan_area_m2": 100.0,
            "height_m": 20.0,
            "barricade_rating_kpa": 150,
        },
        headers=auth("engineer"),
    )
    assert stope.status_code == 201, stope.text
    stope_id = stope.json()["id"]
    plan = {
        "stages": [
            {
                "name": "plug",
                "recipe_id": recipe_id,
                "top_height_m": 3.0,
                "max_rise_rate_m_h": 0.5,
                "cure_hold_h": 48.0,
                "requirements": [{"name": "plug", "ucs_kpa": 100.0, "curing_days": 7.0}],
            },
            {"name": "body", "recipe_id": recipe_id, "top_height_m": 20.0, "max_rise_rate_m_h": 1},
        ]
    }
    r = api.post(f"/api/v1/stopes/{stope_id}/plans", json=plan, headers=auth("engineer"))
    assert r.status_code == 200, r.text
    samples = ["CMP-1", "CMP-2", "CMP-3"]
    r = api.post(
        f"/api/v1/stopes/{stope_id}/pours",
        json={"paste_flow_m3_h": 50.0, "sample_ids": samples},
        headers=auth("scada"),
    )
    assert r.status_code == 201, r.text
    cast_at = datetime.fromisoformat(
        api.get("/api/v1/samples/CMP-1", headers=LAB).json()["cast_at"]
    )
    with lab_clock_at(service, cast_at + timedelta(days=7, minutes=5)):
        for sample, ucs in zip(samples, (180.0, 85.0, 150.0), strict=True):
            r = api.post(
                f"/api/v1/samples/{sample}/results",
                json={"curing_days": 7, "ucs_kpa": ucs},
                headers=LAB,
            )
            assert r.status_code == 201, r.text
        with signed_in(browser, service, "engineer") as page:
            page.goto(f"{service.base_url}/#/stopes/{stope_id}")
            page.wait_for_selector("#compliance-link")
            page.click("#compliance-link")
            figure = "[data-trend=ucs-age-plug]"
            page.wait_for_selector(f"{figure}[data-judged='3'][data-design-points='12'] svg.plot")
            assert page.locator(f"{figure} svg .marker.pass").count() == 2
            assert page.locator(f"{figure} svg .marker.fail[data-sample=CMP-2]").count() == 1
            assert page.locator(f"{figure} svg .segment.requirement").count() == 1
            assert page.locator(f"{figure} svg polyline.line.c0").count() >= 1
            assert "plug 100 kPa at 7 d" in page.inner_text(figure)
            assert page.locator("#stope-pass-fractions tr[data-group=stope]").count() >= 1
            assert page.locator("#strength-tests tbody tr").count() == 1
            assert "low_cylinder" in page.inner_text("#stope-notices")
            shot(page, "stope-compliance.png")


# --- the operator -----------------------------------------------------------------------


def test_an_operator_watches_the_paste_of_an_unreachable_recipe_go_to_the_dump(
    browser: Browser, service: ServiceThread, api: httpx.Client
) -> None:
    reason = "trial of the new filter's cake; the plant's feed is wetter until it runs"
    stored = api.post(
        "/api/v1/recipes",
        json={"name": "S-950 dry", "mix": TOO_DRY, "unmakeable_reason": reason},
        headers=auth("engineer"),
    )
    assert stored.status_code == 201, stored.text
    recipe_id = stored.json()["id"]
    # The engineer approves it on its page: the plant cannot make it, so the page asks why.
    with signed_in(browser, service, "engineer") as page:
        page.goto(f"{service.base_url}/#/recipes/{recipe_id}")
        page.wait_for_selector("#approve-form [name=unmakeable_reason]")
        assert page.get_attribute("#makeability", "data-makeable") == "false"
        assert "cannot make it" in page.inner_text("#makeability")
        page.fill("#approve-form [name=approved_by]", "Ada Engineer")
        page.fill("#approve-form [name=unmakeable_reason]", reason)
        page.click("#approve")
        page.wait_for_function(
            "() => document.querySelector('#recipe-state')?.textContent === 'approved'"
        )
        shot(page, "recipe-unmakeable-approved.png")
    audit = api.get("/api/v1/audit?limit=1000", headers=auth("hmi")).json()["items"]
    (entry,) = [
        e for e in audit if e["kind"] == "recipe_approval" and e["new"]["recipe_id"] == recipe_id
    ]
    assert entry["detail"] == reason
    stope = api.post(
        "/api/v1/stopes",
        json={"name": "S-950", "plan_area_m2": 1.5, "height_m": 12.0, "barricade_rating_kpa": 100},
        headers=auth("engineer"),
    )
    assert stope.status_code == 201, stope.text
    stope_id = stope.json()["id"]
    plan = {
        "stages": [
            {"name": "body", "recipe_id": recipe_id, "top_height_m": 12.0, "max_rise_rate_m_h": 60}
        ],
        "unmakeable_reason": reason,
    }
    r = api.post(f"/api/v1/stopes/{stope_id}/plans", json=plan, headers=auth("engineer"))
    assert r.status_code == 200, r.text
    until(
        lambda: api.get("/api/v1/plant/status", headers=auth("hmi")).json()["active_pour"] is None,
        within_s=60,
        what="no pour running",
    )
    poured = api.post(
        f"/api/v1/stopes/{stope_id}/pours", json={"paste_flow_m3_h": 90.0}, headers=auth("scada")
    )
    assert poured.status_code == 201, poured.text
    pour_id = poured.json()["id"]
    try:
        with signed_in(browser, service, "scada") as page:
            assert nav(page) == ["plant", "pours", "recipes", "stopes"]
            # The operator starts the stage's pour from its report page.
            page.goto(f"{service.base_url}/#/pours/{pour_id}")
            page.click("#report button[data-action=start]")
            page.click("[data-nav=plant]")
            # Everything goes to the dump: the dumped volume grows, nothing is placed.
            page.wait_for_selector("#dump-now")
            page.wait_for_function(
                "() => Number(document.querySelector('#pour-dumped')?.dataset.m3) > 0.3"
            )
            first = float(page.get_attribute("#pour-dumped", "data-m3") or "nan")
            page.wait_for_function(
                "([v]) => Number(document.querySelector('#pour-dumped')?.dataset.m3) > v + 0.5",
                arg=[first],
            )
            assert float(page.inner_text("#pour-placed")) == 0.0
            assert "m3 sent to the dump" in page.inner_text("#pour-dump")
            assert "none while the paste goes to the dump" in page.inner_text("#pour-left")
            shot(page, "plant-dumping.png")

            # The stope does not rise while the paste goes to the dump: no red rise rate.
            page.goto(f"{service.base_url}/#/stopes/{stope_id}")
            page.wait_for_selector("#rise-rate[data-dumping=true]")
            assert "alarm" not in (page.get_attribute("#rise-rate", "class") or "")
            assert page.inner_text("#rise-rate") == "0.0 m/h"
            assert "goes to the dump" in page.inner_text("#rise-limit")
            assert page.is_visible("#stage-dump")
            shot(page, "stope-dumping.png")

            # The feed cannot reach the recipe (or the dump's allowance runs out): the pour
            # pauses with its alarm, whose detail the operator reads on the plant view.
            page.click("[data-nav=plant]")
            page.wait_for_selector("#pour-pause", timeout=90_000)
            code = page.get_attribute("#pour-pause", "data-code")
            assert code in ("recipe_unreachable_pause", "dump_limit_pause")
            alarm = next(
                a
                for a in api.get("/api/v1/alarms", headers=auth("hmi")).json()
                if a["code"] == code
            )
            assert alarm["detail"] and alarm["detail"] in page.inner_text("#pour-pause")
            assert alarm["detail"] in page.inner_text(f"tr[data-alarm={code}] .alarm-detail")
            assert page.locator("#pour-body button[data-action=resume]").count() == 1
            shot(page, "plant-dump-pause.png")

            # The pour's report and the pours list carry the dumped volume.
            dumped = api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi")).json()["dumped_m3"]
            assert dumped > first
            page.goto(f"{service.base_url}/#/pours")
            cell = f"tr[data-pour='{pour_id}'] [data-col=dumped]"
            page.wait_for_selector(cell)
            assert float(page.inner_text(cell)) >= round(first, 1)
            shot(page, "pours-dumped.png")
            page.click(f"tr[data-pour='{pour_id}'] a")
            page.wait_for_selector("#report-dumped")
            assert float(page.inner_text("#report-dumped").split()[0]) >= round(first, 2)
            assert (
                code in page.inner_text("#interruptions")
                or page.locator("#interruptions tr[data-reason]").count() >= 1
            )
            shot(page, "pour-report-dumped.png")
    finally:
        stop = api.post(f"/api/v1/pours/{pour_id}/stop", headers=auth("scada"))
        assert stop.status_code in (200, 409), stop.text


# --- the lab's Cw against the plant's (last: an approved correction steers later pours) ---


def test_an_engineer_reconciles_the_labs_cw_and_approves_the_correction(
    browser: Browser, service: ServiceThread, api: httpx.Client
) -> None:
    until(
        lambda: api.get("/api/v1/plant/status", headers=auth("hmi")).json()["active_pour"] is None,
        within_s=60,
        what="no pour running",
    )
    recipe_id = approved_recipe(api, "S-960 body", RECIPE)
    made = api.post(
        "/api/v1/pours",
        json={
            "stope_id": "S-960",
            "recipe_id": recipe_id,
            "target_volume_m3": 40.0,
            "paste_flow_m3_h": 90.0,
        },
        headers=auth("scada"),
    )
    assert made.status_code == 201, made.text
    pour_id = made.json()["id"]
    samples = [f"REC-{i}" for i in range(1, 5)]
    try:
        started = api.post(f"/api/v1/pours/{pour_id}/start", headers=auth("scada"))
        assert started.status_code == 200, started.text
        # Cast once the paste is placed steadily (the gauge reads paste, not the start).
        until(
            lambda: (
                api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi")).json()["poured_m3"] > 4.0
            ),
            within_s=90,
            what="paste placed",
        )
        cast = api.post(
            f"/api/v1/pours/{pour_id}/samples", json={"sample_ids": samples}, headers=auth("scada")
        )
        assert cast.status_code in (200, 201), cast.text
        until(
            lambda: (
                api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi")).json()["poured_m3"] > 8.0
            ),
            within_s=60,
            what="the history past the cast",
        )
    finally:
        api.post(f"/api/v1/pours/{pour_id}/stop", headers=auth("scada"))
    # The lab weighs the fresh paste two points drier than the recipe's 72 % Cw.
    tested = datetime.now(UTC)  # weighed at once
    for i, sample in enumerate(samples):
        r = api.post(
            f"/api/v1/samples/{sample}/results",
            json={
                "tested_at": tested.isoformat(),
                "wet_mass_g": 1000.0,
                "dry_mass_g": 740.0 + (i - 1.5) * 0.8,
            },
            headers=LAB,
        )
        assert r.status_code == 201, r.text
    with signed_in(browser, service, "engineer") as page:
        page.click("[data-nav=reconciliations]")
        page.wait_for_selector("#active-correction")
        assert "None" in page.inner_text("#active-correction")
        page.click("#reconcile-panel summary")
        page.fill("#reconcile-form [name=sample_ids]", ", ".join(samples))
        # The history is wall time and the plant runs 20 times faster: a short window.
        page.fill("#reconcile-form [name=cast_window_s]", "3")
        page.click("#reconcile")
        page.wait_for_selector("#estimate")
        assert page.locator("#reconciled-samples tbody tr").count() == 4
        assert page.inner_text("#reconciliation-status") == "proposed"
        recorded = [
            float(t)
            for t in page.locator("#reconciled-samples td[data-col=recorded]").all_inner_texts()
        ]
        assert all(71.0 < cw < 73.0 for cw in recorded), recorded  # the recipe's 72 %
        assert "–" in page.inner_text("#gs-estimate")  # the interval
        assert page.locator("[data-trend=gs-samples] svg .marker").count() == 4
        shot(page, "reconciliation.png")
        page.fill("#approve-reconciliation [name=approved_by]", "Ada Engineer")
        page.click("#approve")
        page.wait_for_function(
            "() => document.querySelector('#reconciliation-status')?.textContent === 'approved'"
        )
        page.click("[data-nav=reconciliations]")
        page.wait_for_selector("#correction-in-force")
        assert "Ada Engineer" in page.inner_text("#correction-in-force")
        correction = api.get("/api/v1/lab/correction", headers=auth("hmi")).json()["correction"]
        assert correction is not None and correction["approved_by"] == "Ada Engineer"
