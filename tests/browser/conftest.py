"""Playwright drives Debian's Chromium (no browser download): headless, no sandbox."""

import os
import shutil

import pytest

# tests/conftest.py's TEST_PASSWORD (``make_user``'s default). Not imported: several
# directories have a ``conftest`` module, so ``from conftest import`` may find another one.
TEST_PASSWORD = "correct-horse-battery"  # noqa: S105 - the test users' password
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing at {CHROMIUM}")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture(autouse=True)
def _fail_fast(page):
    """A missing control fails in 10 s, not Playwright's default 30 s."""
    page.set_default_timeout(10_000)


@pytest.fixture
def user_password() -> str:
    """The password of the users ``make_user`` creates."""
    return TEST_PASSWORD


@pytest.fixture
def signed_in(page, live_server):
    """``signed_in(user)`` → the page signed in through the real form."""

    def do(user, password=TEST_PASSWORD):
        page.goto(live_server.url + "/login")
        page.get_by_label("Электронная почта").fill(user.email)
        page.get_by_label("Пароль").fill(password)
        page.get_by_role("button", name="Вход").click()
        page.wait_for_url(live_server.url + "/")
        return page

    return do


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
