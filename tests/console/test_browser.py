"""The console in a real browser (Debian's Chromium, headless, driven by Playwright) against a
real server: sign in, the builder, the audiences list, the profile explorer and "why", dead
letters and redrive, a read token's refusals, the keyboard and narrow screens. Each test writes
a screenshot of the pages it saw to its tmp_path."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audiences.v1 import admin_pb2, common_pb2, sync_pb2
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import bearer
from tests.console.conftest import CHROMIUM_ARGS, call, chromium
from tests.evaluator.conftest import Space, new_space
from tests.sync.conftest import Receiver, connect, ms, wait_for, webhook

BUYERS = "event('Order Completed').count() >= 1"
EDITED = "event('Order Completed').count() >= 2 or trait('plan') = 'pro'"
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (its own sessionStorage) and page; a script error, or a console
    error other than a refused request's (a blocked resource, a policy violation), fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error"
              and not message.text.startswith("Failed to load resource: the server responded") else None)
    yield opened
    context.close()
    assert not errors, errors


def shot(page: Page, tmp_path: Path, name: str) -> None:
    """Writes a full-page screenshot to the test's tmp_path."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def sign_in(page: Page, space: Space, scope: str = "admin", where: str = "") -> None:
    page.goto(f"{space.running.http_url}/console{where}")
    page.get_by_label("Token").fill(space.tokens[scope])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()


def shop(space: Space) -> None:
    """Four users: ada (two orders, pro), bob and cy (one order each), dan (pro, no order)."""
    calls: list[dict[str, Any]] = [
        {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com", "plan": "pro"}},
        {"type": "identify", "userId": "dan", "traits": {"email": "dan@example.com", "plan": "pro"}},
        {"type": "identify", "userId": "bob", "traits": {"plan": "free"}},
    ]
    for user, total in (("ada", 30), ("ada", 45), ("bob", 12), ("cy", 7)):
        calls.append({"type": "track", "userId": user, "event": "Order Completed", "properties": {"total": total}})
    calls.append({"type": "track", "userId": "ada", "event": "Signed Up"})
    space.send(*calls)


def audience(space: Space, key: str) -> admin_pb2.Audience:
    return space.running.admin.GetAudience(admin_pb2.GetAudienceRequest(
        collection=common_pb2.COLLECTION_USERS, key=key), metadata=bearer(space.tokens["admin"])).audience


def live(space: Space, key: str) -> admin_pb2.Audience:
    return wait_for(lambda: (found := audience(space, key)).status == admin_pb2.COMPUTATION_STATUS_LIVE and found,
                    what=f"{key} live")


def test_sign_in_needs_a_token_and_no_token_shows_no_data(page: Page, space: Space, tmp_path: Path) -> None:
    """Without a token the console shows only the sign-in form; a wrong token is refused with the
    server's reason; the right one opens the pages; signing out forgets the token."""
    space.define("buyers", BUYERS)
    page.goto(f"{space.running.http_url}/console#/audiences")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert "buyers" not in page.content()
    page.get_by_label("Token").fill("aud_admin_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("401")
    shot(page, tmp_path, "sign-in-refused")
    page.get_by_label("Token").fill(space.tokens["admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("tr[data-key=buyers]")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('audiences.console.token')") == space.tokens["admin"]
    assert page.context.cookies() == []
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('audiences.console.token')") is None


def test_builder_creates_an_audience_and_shows_an_edits_diff(page: Page, space: Space, tmp_path: Path) -> None:
    """A typo shows the caret and the hint as you type; the valid text previews its count; the saved
    audience goes live in the list with the right size; an edit shows entering, exiting and staying
    before it is saved; the versions list rolls it back."""
    shop(space)
    sign_in(page, space, where="#/builder/new")
    page.get_by_label("Key").fill("buyers")
    page.get_by_label("Name").fill("Buyers")
    page.get_by_label("Definition", exact=True).fill("event('Order Completed').cuont() >= 1")
    problem = page.locator(".problem")
    expect(problem).to_contain_text("line 1, column 26")
    expect(problem.locator(".caret")).to_have_text(
        "event('Order Completed').cuont() >= 1\n" + " " * 25 + "^^^^^")
    expect(problem).to_contain_text("did you mean 'count'?")
    shot(page, tmp_path, "builder-typo")
    page.get_by_label("Definition", exact=True).fill(BUYERS)
    expect(page.locator(".valid")).to_have_text("Valid.")
    expect(page.locator(".summary")).to_contain_text("Order Completed")
    expect(page.locator(".preview-count .count")).to_have_text("3")
    shot(page, tmp_path, "builder-preview")
    page.get_by_role("button", name="Save", exact=True).click()
    row = page.locator("tr[data-key=buyers]")
    expect(row.locator(".status")).to_have_text("LIVE", timeout=WAIT_MS)
    expect(row.locator(".size")).to_have_text("3")
    expect(row.locator("svg.chart")).to_be_visible()
    shot(page, tmp_path, "audiences-list")
    assert audience(space, "buyers").size == 3

    row.get_by_role("link", name="Buyers").click()
    expect(page.get_by_label("Definition", exact=True)).to_have_value(BUYERS)
    sizes = page.get_by_role("region", name="Size over time")
    expect(sizes).to_contain_text("Size now 3; 3 entries and exits")
    page.get_by_label("Interval").select_option("daily")
    expect(sizes.locator("svg.chart")).to_have_attribute("aria-label", re.compile(r"^buyers size, daily: size 3 now"))
    page.get_by_label("Definition", exact=True).fill(EDITED)
    diff = page.locator(".diff")
    expect(diff.locator("[data-outcome=entering] .count")).to_have_text("1")
    expect(diff.locator("[data-outcome=exiting] .count")).to_have_text("2")
    expect(diff.locator("[data-outcome=staying] .count")).to_have_text("1")
    expect(diff.locator("[data-outcome=entering]")).to_contain_text("dan@example.com")
    shot(page, tmp_path, "builder-diff")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("version 2")
    assert audience(space, "buyers").definition == EDITED
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_role("status")).to_contain_text("Rolled back to version 1")
    expect(page.get_by_label("Definition", exact=True)).to_have_value(BUYERS)
    expect(page.locator("th", has_text="3 (current)")).to_be_visible()
    shot(page, tmp_path, "builder-versions")
    assert audience(space, "buyers").definition == BUYERS


def test_builder_diffs_with_edited_options_and_refuses_a_stale_save(page: Page, space: Space, tmp_path: Path
                                                                     ) -> None:
    """The builder's diff uses the options being edited (an anonymous buyer enters once they are
    included); a save after someone else's is refused, the saved definition is loaded again with
    the edited text kept, and the next save sends only what this editor changed; a version with
    the current text and options is not offered for rollback."""
    shop(space)
    space.send({"type": "track", "anonymousId": "anon-1", "event": "Order Completed"})
    space.define("buyers", BUYERS)
    live(space, "buyers")
    sign_in(page, space, where="#/builder/users/buyers")
    expect(page.get_by_label("Definition", exact=True)).to_have_value(BUYERS)
    page.get_by_label("Definition", exact=True).fill(BUYERS + " ")
    diff = page.locator(".diff")
    expect(diff.locator("[data-outcome=entering] .count")).to_have_text("0")
    page.get_by_label("Include anonymous users").check()
    expect(page.locator(".preview-count .count")).to_have_text("4")
    expect(diff.locator("[data-outcome=entering] .count")).to_have_text("1")
    page.get_by_label("Include anonymous users").uncheck()
    expect(diff.locator("[data-outcome=entering] .count")).to_have_text("0")
    space.update("buyers", name="Buyers (renamed elsewhere)")  # another editor saves meanwhile
    page.get_by_label("Definition", exact=True).fill(EDITED)
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("was saved by someone else since you loaded it")
    expect(page.get_by_label("Definition", exact=True)).to_have_value(EDITED)
    expect(page.get_by_label("Name")).to_have_value("Buyers (renamed elsewhere)")
    assert audience(space, "buyers").definition == BUYERS
    shot(page, tmp_path, "builder-conflict")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("version 2")
    saved = audience(space, "buyers")
    assert (saved.definition, saved.name) == (EDITED, "Buyers (renamed elsewhere)")
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_role("status")).to_contain_text("saved as version 3")
    expect(page.locator("th", has_text="3 (current)")).to_be_visible()
    expect(page.get_by_role("button", name="Roll back to version 1")).to_have_count(0)
    expect(page.get_by_role("button", name="Roll back to version 2")).to_be_visible()


def test_builder_previews_match_the_text_shown_and_what_is_stored(page: Page, space: Space) -> None:
    """After a refused save the diff compares with what is stored now, not with the version the
    other editor overwrote; a text that is not valid shows no preview of the text before it; and
    after a save the preview counts as the saved definition does (one without historical data
    counts from its own creation: read as a new definition, the preview counted from now, 0)."""
    space.send(*({"type": "track", "userId": f"u{i}", "event": "Buy", "at": space.now() - 3_600_000}
                 for i in range(4)))
    space.define("nh", "event('Buy').count() >= 1", include_historical_data=False)
    live(space, "nh")
    space.send(*({"type": "track", "userId": f"u{i}", "event": "Buy"} for i in range(2)))
    wait_for(lambda: audience(space, "nh").size == 2, what="the two buyers since its creation")
    sign_in(page, space, where="#/builder/users/nh")
    definition = page.get_by_label("Definition", exact=True)
    expect(definition).to_have_value("event('Buy').count() >= 1")
    definition.fill("event('Buy').count() >= 1 or trait('vip') = true")
    diff = page.locator(".diff")
    expect(diff.locator("[data-outcome=staying] .count")).to_have_text("2")
    space.update("nh", definition="event('Buy').count() >= 5")  # another editor saves meanwhile
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("was saved by someone else since you loaded it")
    expect(diff.locator("[data-outcome=entering] .count")).to_have_text("2")
    expect(diff.locator("[data-outcome=staying] .count")).to_have_text("0")
    definition.fill("event('Buy').count() >=")
    expect(page.locator(".problem")).to_be_visible()
    expect(page.locator(".preview-count")).to_have_count(0)
    definition.fill("event('Buy').count() >= 1 or trait('vip') = true")
    expect(diff.locator("[data-outcome=entering] .count")).to_have_text("2")
    definition.fill("   ")  # emptied: no text, no preview (the text before's stayed)
    expect(page.locator(".preview-count")).to_have_count(0)
    expect(page.locator(".diff")).to_have_count(0)
    definition.fill("event('Buy').count() >= 1 or trait('vip') = true")
    expect(diff.locator("[data-outcome=entering] .count")).to_have_text("2")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("version 3")
    expect(page.locator(".diff")).to_have_count(0)
    expect(page.locator(".preview-count .count")).to_have_text("2")


def test_an_unsaved_edit_survives_a_sign_out_mid_edit(page: Page, space: Space) -> None:
    """A marketer's token is revoked while she edits: the page signs out at its next check;
    signed in again, the definition she was editing has her unsaved text back, said to be not
    saved (it showed the stored text: her edit was lost). Signed in to another space first, its
    definition of the same key shows its own text (a draft kept by key alone went there); and
    her edit, made before someone else's save, is refused once (409), not laid over it."""
    space.define("pro", "trait('plan') = 'pro'")
    live(space, "pro")
    auth = space.running.server.engine.auth
    issued = auth.create_token(auth.space_by_id(space.space_id).name, "admin", space.now(), "maria")
    page.goto(f"{space.running.http_url}/console#/builder/users/pro")
    page.get_by_label("Token").fill(issued.token)
    page.get_by_role("button", name="Sign in").click()
    definition = page.get_by_label("Definition", exact=True)
    expect(definition).to_have_value("trait('plan') = 'pro'")
    # The page settled (the loaded text checked and previewed, its sizes and versions read): the
    # first request after the revocation is then the check of the edit.
    expect(page.locator(".preview-count .count")).to_have_text("0")
    expect(page.get_by_role("region", name="Size over time")).to_contain_text("Size now")
    expect(page.get_by_role("region", name="Versions")).to_contain_text("1 (current)")
    auth.revoke(issued.token_id)
    edit = "trait('plan') = 'pro' and trait('country') = 'FR'"
    definition.fill(edit)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    other = new_space(space.running)
    other.define("pro", "trait('tier') = 'gold'")
    page.get_by_label("Token").fill(other.tokens["admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(definition).to_have_value("trait('tier') = 'gold'")
    page.get_by_role("button", name="Sign out").click()
    space.update("pro", description="set elsewhere")  # another editor saves meanwhile
    page.get_by_label("Token").fill(space.tokens["admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(definition).to_have_value(edit)
    expect(page.get_by_role("status")).to_contain_text("not saved yet")
    assert audience(space, "pro").definition == "trait('plan') = 'pro'"
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("was saved by someone else since you loaded it")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("version 2")
    saved = audience(space, "pro")
    assert (saved.definition, saved.description) == (edit, "set elsewhere")


def test_a_draft_for_a_definition_deleted_meanwhile_is_shown_not_lost(page: Page, space: Space) -> None:
    """Signed out mid-edit, and the definition deleted before signing in again: the edits cannot
    go back into it, so the page shows them and keeps them (it dropped them under a notice saying
    they were back in the form, which was empty)."""
    space.define("pro", "trait('plan') = 'pro'")
    live(space, "pro")
    sign_in(page, space, where="#/builder/users/pro")
    definition = page.get_by_label("Definition", exact=True)
    expect(definition).to_have_value("trait('plan') = 'pro'")
    definition.fill("trait('plan') = 'gold'")
    page.get_by_role("button", name="Sign out").click()
    deleting = admin_pb2.DeleteAudienceRequest(key="pro", collection=common_pb2.COLLECTION_USERS)
    space.running.admin.DeleteAudience(deleting, metadata=bearer(space.tokens["admin"]))
    page.get_by_label("Token").fill(space.tokens["admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".notice.error", has_text="could not be put back")).to_contain_text("trait('plan') = 'gold'")
    assert "gold" in page.evaluate("sessionStorage.getItem('audiences.console.draft')")


def test_list_disables_enables_and_shows_a_refused_delete(page: Page, space: Space, tmp_path: Path) -> None:
    """Disable and enable change the definition's status; deleting one that another reads is
    refused with the readers named; deleting a free one removes it."""
    space.define("buyers", BUYERS)
    space.define("vip", "trait('buyers') = true")
    sign_in(page, space)
    row = page.locator("tr[data-key=buyers]")
    row.get_by_role("button", name="Disable buyers").click()
    expect(row.locator(".status")).to_have_text("DISABLED")
    assert not audience(space, "buyers").enabled
    row.get_by_role("button", name="Enable buyers").click()
    expect(row.locator(".status")).to_have_text("LIVE", timeout=WAIT_MS)
    row.get_by_role("button", name="Delete buyers").click()
    row.get_by_role("button", name="Confirm delete buyers").click()
    expect(page.get_by_role("alert")).to_contain_text("read by vip")
    shot(page, tmp_path, "delete-refused")
    vip = page.locator("tr[data-key=vip]")
    vip.get_by_role("button", name="Delete vip").click()
    vip.get_by_role("button", name="Confirm delete vip").click()
    expect(page.locator("tr[data-key=vip]")).to_have_count(0)
    expect(page.locator("tr[data-key=buyers]")).to_have_count(1)


def test_profile_explorer_finds_a_profile_and_explains_why(page: Page, space: Space, tmp_path: Path) -> None:
    """A profile found by `email:…` shows its traits, events (filtered), identifiers and audiences;
    "why" next to an audience shows explain's tree with the events that decided it."""
    shop(space)
    space.define("buyers", BUYERS)
    live(space, "buyers")
    sign_in(page, space, where="#/profiles")
    page.get_by_label("Profile (type:value or prf_…)").fill("email:ada@example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".profile-head")).to_contain_text("prf_")
    traits = page.get_by_role("region", name="Traits")
    expect(traits).to_contain_text('"pro"')
    expect(traits).to_contain_text("buyers")
    expect(page.get_by_role("region", name="Identifiers")).to_contain_text("user_id:ada")
    events = page.get_by_role("region", name="Events")
    expect(events.locator("li")).to_have_count(3)
    page.get_by_label("Only events").fill("Signed Up")
    page.get_by_role("button", name="Filter events").click()
    expect(events.locator("li")).to_have_count(1)
    membership = page.locator(".memberships li[data-key=buyers]")
    membership.get_by_role("button", name="Why is this profile in buyers").click()
    why = page.locator(".explain")
    expect(why).to_be_focused()
    expect(why).to_contain_text("Value true")
    expect(why.locator(".stream")).to_contain_text("Order Completed: 2 seen, 2 kept")
    expect(why.locator(".evidence tbody tr")).to_have_count(2)
    shot(page, tmp_path, "profile-why")
    page.set_viewport_size({"width": 390, "height": 800})
    shot(page, tmp_path, "profile-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_events_until_a_day_include_that_day(page: Page, space: Space) -> None:
    """From and Until the same day list that day's events: Until includes the day chosen."""
    day = dt.datetime(2026, 7, 2, 15, tzinfo=dt.UTC)
    space.send({"type": "track", "userId": "ada", "event": "On The Day", "at": int(day.timestamp() * 1000)},
               {"type": "track", "userId": "ada", "event": "Next Day",
                "at": int((day + dt.timedelta(days=1)).timestamp() * 1000)})
    sign_in(page, space, where="#/profiles/users/user_id%3Aada")
    events = page.get_by_role("region", name="Events")
    expect(events.locator("li")).to_have_count(2)
    page.get_by_label("From (UTC)").fill("2026-07-02")
    page.get_by_label("Until (UTC, that day included)").fill("2026-07-02")
    page.get_by_role("button", name="Filter events").click()
    expect(events.locator("li")).to_have_count(1)
    expect(events.locator("li")).to_contain_text("On The Day")
    # Until the last day there is: every event from the day on (the day after it, in year 10000,
    # was sent as the end, and refused).
    page.get_by_label("Until (UTC, that day included)").fill("9999-12-31")
    page.get_by_role("button", name="Filter events").click()
    expect(events.locator("li")).to_have_count(2)
    expect(page.get_by_role("alert")).to_have_count(0)


def _parked(space: Space, receiver: Receiver, count: int) -> None:
    """`count` users' entries into `buyers`, each parked as a dead letter of webhook `hook` (the
    receiver refuses them once, for good)."""
    receiver.fail_when = lambda body: 400  # parked after one attempt
    webhook(space, "hook", receiver.url)
    space.define("buyers", BUYERS)
    connect(space, "hook", "buyers", send_identify=True)
    space.send(*[{"type": "track", "userId": f"u{n}", "event": "Order Completed"} for n in range(count)])
    meta = bearer(space.tokens["admin"])
    wait_for(lambda: len(space.running.sync.ListDeadLetters(
        sync_pb2.ListDeadLettersRequest(destination_key="hook"), metadata=meta).dead_letters) == count,
        timeout=WAIT_MS / 1000, what=f"{count} dead letters")


def test_dead_letters_are_counted_paged_and_show_their_change(page: Page, space: Space,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The heading counts every dead letter, not those listed (3 here, 50 unpatched); "Show more"
    lists the rest; each names its change."""
    from audiences_server.http.console import reads

    monkeypatch.setattr(reads, "DEAD_LETTERS_SHOWN", 3)
    receiver = Receiver()
    receiver.start()
    try:
        _parked(space, receiver, 5)
    finally:
        receiver.stop()
    sign_in(page, space, where="#/destinations")
    hook = page.locator("article[data-key=hook]")
    expect(hook.get_by_role("heading", name="Dead letters (5)")).to_be_visible()
    expect(hook.locator(".dead-letters tbody tr")).to_have_count(3)
    expect(hook.locator(".dead-letters td.change").first).to_have_text("entered")
    hook.get_by_role("button", name="Show more dead letters of hook").click()
    expect(hook.locator(".dead-letters tbody tr")).to_have_count(5)
    expect(hook.get_by_role("button", name="Show more dead letters of hook")).to_have_count(0)


def test_dead_letter_is_shown_and_redriven(page: Page, space: Space, tmp_path: Path) -> None:
    """A change the receiver keeps refusing is parked: the destinations page shows the connection's
    failure and the dead letter; Redrive puts it back and the receiver, now healthy, gets it."""
    receiver = Receiver()
    receiver.start()
    try:
        receiver.fail_when = lambda body: 500
        policy = sync_pb2.DeliveryPolicy(max_attempts=5, initial_backoff=ms(10), max_backoff=ms(20),
                                         request_timeout=ms(2000))
        webhook(space, "hook", receiver.url, policy=policy)
        space.define("buyers", BUYERS)
        connect(space, "hook", "buyers", send_identify=True)
        shop(space)
        meta = bearer(space.tokens["admin"])
        parked = wait_for(lambda: space.running.sync.ListDeadLetters(
            sync_pb2.ListDeadLettersRequest(destination_key="hook"), metadata=meta).dead_letters,
            timeout=WAIT_MS / 1000, what="dead letters")
        sign_in(page, space, where="#/destinations")
        hook = page.locator("article[data-key=hook]")
        expect(hook.locator(".connections")).to_contain_text("HTTP 500")
        letter = hook.locator(f"tr[data-id={parked[0].id}]")
        expect(letter).to_contain_text("HTTP 500")
        shot(page, tmp_path, "destinations-dead-letter")
        receiver.fail_when = None
        letter.get_by_role("button", name=f"Redrive {parked[0].id}").click()
        expect(page.get_by_role("status")).to_contain_text("1 dead letter put back")
        expect(hook.locator(f"tr[data-id={parked[0].id}]")).to_have_count(0)
        wait_for(lambda: [c for c in receiver.calls() if c.get("messageId", "").startswith(parked[0].message_id)],
                 timeout=WAIT_MS / 1000, what="the redriven change delivered")
        shot(page, tmp_path, "destinations-redriven")
    finally:
        receiver.stop()


def test_a_read_token_sees_read_only_pages_and_the_server_refuses_changes(
        page: Page, space: Space, tmp_path: Path) -> None:
    """Signed in with a read token the pages say they are read-only; a disable, a delete and a save
    are each refused by the server (403) and the page says so; nothing changes."""
    space.define("buyers", BUYERS)
    sign_in(page, space, scope="read")
    expect(page.get_by_role("note")).to_contain_text("read token")
    row = page.locator("tr[data-key=buyers]")
    row.get_by_role("button", name="Disable buyers").click()
    expect(page.get_by_role("alert")).to_contain_text("Refused by the server (403 READ_ONLY_TOKEN)")
    row.get_by_role("button", name="Delete buyers").click()
    row.get_by_role("button", name="Confirm delete buyers").click()
    expect(page.get_by_role("alert")).to_contain_text("buyers: could not delete. Refused by the server (403")
    shot(page, tmp_path, "read-only-refused")
    page.goto(f"{space.running.http_url}/console#/builder/users/buyers")
    expect(page.get_by_label("Definition", exact=True)).to_have_value(BUYERS)
    page.get_by_label("Definition", exact=True).fill("trait('plan') = 'pro'")
    expect(page.locator(".valid")).to_be_visible()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("403 READ_ONLY_TOKEN")
    kept = audience(space, "buyers")
    assert (kept.definition, kept.enabled) == (BUYERS, True)


def test_keyboard_alone_signs_in_and_moves_between_pages(page: Page, space: Space, tmp_path: Path) -> None:
    """The sign-in form and the navigation work from the keyboard, focus is visible, and a move to
    another page names it in the title and puts focus at its content."""
    page.goto(f"{space.running.http_url}/console")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(space.tokens["admin"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Destinations":
            break
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Destinations")).to_be_visible()
    expect(page).to_have_title("Destinations · Audiences console")
    assert page.evaluate("document.activeElement.id") == "main"
    shot(page, tmp_path, "destinations-empty")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{space.running.http_url}/console#/builder/new")
    expect(page.get_by_label("Definition", exact=True)).to_be_visible()
    shot(page, tmp_path, "builder-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_failed_read_shows_the_refusal_not_what_was_read_before(page: Page, space: Space, tmp_path: Path) -> None:
    """A read the server refuses leaves nothing of the read before it on the page: an explanation
    of a definition deleted since the page loaded, an events filter refused (From after Until),
    and a profile that does not exist each show the refusal alone."""
    shop(space)
    space.define("buyers", BUYERS)
    space.define("gone", "trait('plan') = 'free'")
    live(space, "buyers")
    sign_in(page, space, where="#/profiles/users/user_id%3Aada")
    expect(page.locator(".profile-head")).to_contain_text("prf_")
    page.locator(".memberships li[data-key=buyers]").get_by_role("button", name="Why is this profile in buyers").click()
    why = page.locator(".explain")
    expect(why.locator(".definition")).to_have_text(BUYERS)
    assert call(space.running, "DELETE", "/computations/users/gone", space.tokens["admin"]).status == 200
    page.get_by_label("Explain any definition").select_option("gone")
    page.get_by_role("button", name="Explain", exact=True).click()
    expect(why.get_by_role("heading")).to_have_text("Why: gone")
    expect(why.get_by_role("alert")).to_contain_text("404 NOT_FOUND")
    expect(why.locator(".definition")).to_have_count(0)
    expect(why.locator(".tree")).to_have_count(0)

    events = page.get_by_role("region", name="Events")
    expect(events.locator("li")).to_have_count(3)
    page.get_by_label("From (UTC)").fill("2026-07-03")
    page.get_by_label("Until (UTC, that day included)").fill("2026-07-01")
    page.get_by_role("button", name="Filter events").click()
    expect(events.get_by_role("alert")).to_contain_text("TIME_RANGE_INVALID")
    expect(events.locator("li")).to_have_count(0)

    page.get_by_label("Profile (type:value or prf_…)").fill("user_id:nobody_here")
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".profile-head")).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_count(1)  # not the explanation's and the events'
    expect(page.get_by_role("alert")).to_contain_text("404")
    expect(page.locator(".memberships")).to_have_count(0)
    expect(page.get_by_role("region", name="Traits")).to_have_count(0)
    shot(page, tmp_path, "profile-not-found")


def test_find_keeps_the_spaces_of_an_ids_value(page: Page, space: Space) -> None:
    """"Find" trims the id type as the server reads it (the type ends at the first colon), never
    the value: an id with leading and trailing spaces is found."""
    space.send({"type": "identify", "userId": "  spaced  ", "traits": {"plan": "pro"}})
    sign_in(page, space, where="#/profiles")
    page.get_by_label("Profile (type:value or prf_…)").fill(" user_id:  spaced  ")
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".profile-head")).to_contain_text("prf_")
    expect(page.get_by_role("region", name="Identifiers")).to_contain_text("user_id:  spaced  ")


# Counts the answers to /preview the page has read (its `call` reads each with `text()`): once
# the count is reached, what the page did with them is drawn (the rest runs in microtasks).
COUNT_PREVIEWS_READ = """
window.previewsRead = 0;
const text = Response.prototype.text;
Response.prototype.text = async function () {
  const body = await text.call(this);
  if (new URL(this.url).pathname === "/console/api/preview") window.previewsRead += 1;
  return body;
};
"""


def test_a_slow_previews_answer_never_replaces_a_newer_ones(page: Page, space: Space,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder shows the preview of the text in the editor: an older text's preview answered
    after a newer one's (held on the server here until the newer one is shown) is ignored."""
    from audiences_server.http.console import reads

    shop(space)
    slow, fast = BUYERS, "trait('plan') = 'pro'"  # 3 and 2 profiles
    started, release = threading.Event(), threading.Event()
    answered: list[str] = []
    preview = reads.preview

    def held(*args: Any) -> Any:
        text = args[4]
        if text == slow:
            started.set()
            release.wait(WAIT_MS / 1000)
        try:
            return preview(*args)
        finally:
            answered.append(text)

    monkeypatch.setattr(reads, "preview", held)
    page.add_init_script(COUNT_PREVIEWS_READ)
    try:
        sign_in(page, space, where="#/builder/new")
        editor = page.get_by_label("Definition", exact=True)
        editor.fill(slow)
        assert started.wait(WAIT_MS / 1000), "the slow preview was never asked for"
        editor.fill(fast)
        expect(page.locator(".preview-count .count")).to_have_text("2")
    finally:
        release.set()
    wait_for(lambda: slow in answered, timeout=WAIT_MS / 1000, what="the slow preview answered")
    page.wait_for_function("n => window.previewsRead >= n", arg=len(answered))
    assert editor.input_value() == fast
    assert page.locator(".preview-count .count").inner_text() == "2"
    expect(page.get_by_role("button", name="Preview")).to_be_enabled()


def test_the_diff_is_gone_once_the_edit_is_saved(page: Page, space: Space) -> None:
    """After "Save changes" the stored definition is the edited one: the diff of what saving would
    change is no longer shown, and the preview is of the saved text."""
    shop(space)
    space.define("buyers", BUYERS)
    live(space, "buyers")
    sign_in(page, space, where="#/builder/users/buyers")
    expect(page.get_by_label("Definition", exact=True)).to_have_value(BUYERS)
    page.get_by_label("Definition", exact=True).fill(EDITED)
    expect(page.locator(".diff [data-outcome=entering] .count")).to_have_text("1")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("version 2")
    expect(page.locator(".diff")).to_have_count(0)
    expect(page.locator(".preview-count .count")).to_have_text("2")


def test_skip_to_content_moves_focus_without_leaving_the_page(page: Page, space: Space) -> None:
    """"Skip to content" puts the keyboard's focus on the page's content; the page stays."""
    space.define("buyers", BUYERS)
    sign_in(page, space, where="#/audiences")
    expect(page.locator("tr[data-key=buyers]")).to_be_visible()
    page.get_by_role("link", name="Skip to content").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.evaluate("location.hash") == "#/audiences"
    expect(page.locator("tr[data-key=buyers]")).to_be_visible()
    expect(page.get_by_text("No page")).to_have_count(0)


def test_a_dead_letter_redriven_from_a_later_page_leaves_it(page: Page, space: Space,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead letter listed by "Show more" and redriven is no longer listed (nor redriven twice)."""
    from audiences_server.http.console import reads

    monkeypatch.setattr(reads, "DEAD_LETTERS_SHOWN", 3)
    receiver = Receiver()
    receiver.start()
    try:
        _parked(space, receiver, 5)
        receiver.fail_when = None  # a redriven change is delivered, not parked again
        sign_in(page, space, where="#/destinations")
        hook = page.locator("article[data-key=hook]")
        hook.get_by_role("button", name="Show more dead letters of hook").click()
        rows = hook.locator(".dead-letters tbody tr")
        expect(rows).to_have_count(5)
        last = rows.nth(4).get_attribute("data-id")
        hook.get_by_role("button", name=f"Redrive {last}").click()
        expect(page.get_by_role("status")).to_contain_text("1 dead letter put back")
        expect(hook.locator(f"tr[data-id={last}]")).to_have_count(0)
        expect(hook.get_by_role("heading", name="Dead letters (4)")).to_be_visible()
        expect(rows).to_have_count(4)
    finally:
        receiver.stop()


def test_narrow_screens_scroll_wide_tables_inside_their_box(page: Page, space: Space, tmp_path: Path) -> None:
    """At 390 px the audiences and destinations pages do not scroll sideways: the hidden labels of
    their rows' buttons stay in their table's scroll box."""
    receiver = Receiver()
    receiver.start()
    try:
        receiver.fail_when = lambda body: 400  # parked after one attempt
        webhook(space, "hook", receiver.url)
        space.define("buyers", BUYERS)
        connect(space, "hook", "buyers", send_identify=True)
        space.send({"type": "track", "userId": "ada", "event": "Order Completed"})
        meta = bearer(space.tokens["admin"])
        wait_for(lambda: space.running.sync.ListDeadLetters(
            sync_pb2.ListDeadLettersRequest(destination_key="hook"), metadata=meta).dead_letters,
            timeout=WAIT_MS / 1000, what="a dead letter")
    finally:
        receiver.stop()
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, space, where="#/audiences")
    expect(page.locator("tr[data-key=buyers]")).to_be_visible()
    shot(page, tmp_path, "audiences-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"{space.running.http_url}/console#/destinations")
    expect(page.locator("article[data-key=hook] .dead-letters tbody tr").first).to_be_visible()
    shot(page, tmp_path, "destinations-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_destinations_show_their_address_and_no_credential(page: Page, space: Space, tmp_path: Path) -> None:
    """Each destination shows where its changes go: a webhook's URL (the values of its query shown
    as …), a Segment source's base URL, a CSV destination's directory; no credential reaches the
    page, whatever the token."""
    webhook(space, "hook", "http://127.0.0.1:9/x?api_key=SECRETQ", headers={"Authorization": "Bearer SECRETH"})
    for destination in (
            sync_pb2.Destination(key="seg", segment=sync_pb2.SegmentConfig(base_url="http://127.0.0.1:9/v1",
                                                                           write_key="SECRETW")),
            sync_pb2.Destination(key="files", csv=sync_pb2.CsvConfig(directory=str(tmp_path / "csv")))):
        space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=destination),
                                             metadata=bearer(space.tokens["admin"]))
    for scope in ("admin", "read"):
        sign_in(page, space, scope=scope, where="#/destinations")
        expect(page.locator("article[data-key=hook] .address")).to_have_text("http://127.0.0.1:9/x?api_key=…")
        expect(page.locator("article[data-key=seg] .address")).to_have_text("http://127.0.0.1:9/v1")
        expect(page.locator("article[data-key=files] .address")).to_have_text(str(tmp_path / "csv"))
        assert "SECRET" not in page.content()
        page.get_by_role("button", name="Sign out").click()


def test_a_token_with_a_character_no_token_has_is_said_to_be_invalid(page: Page, space: Space) -> None:
    """A token pasted with an invisible character is said to be no valid token, naming the
    character, without asking the server; one with spaces around it is trimmed and taken."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/console/api/" in request.url else None)
    page.goto(f"{space.running.http_url}/console")
    page.get_by_label("Token").fill(space.tokens["admin"] + "\u200b")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("not a valid token")
    expect(alert).to_contain_text(f"character {len(space.tokens['admin']) + 1} is U+200B")
    expect(alert).not_to_contain_text("could not be reached")
    assert asked == []
    page.get_by_label("Token").fill(f" {space.tokens['admin']}\u00a0 ")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
