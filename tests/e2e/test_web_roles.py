"""The page as each role uses it, in Debian's Chromium against the real service on its
built-in simulator (accelerated plant time): the lab technician's sheet upload and result
history. Screenshots of every page go to ``test-output/``.

Cylinders cure in wall time: where a test needs cylinders days old it moves the lab
loop's clock ahead (the service's own clock object), as the stope test moves plant time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
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
