"""Drives the live dashboard in a real headless Chromium against a running daemon.

Usage: dashboard_check.py BASE_URL INSTANCE_ROOT ARTIFACT_DIR [TOKEN]

The daemon's handler must run `workers/dash.sh {file}` (fails on names starting with "bad", sleeps on "slow",
succeeds otherwise). Each step waits for a condition with a deadline; screenshots of each step are kept in
ARTIFACT_DIR. Exits 0 when every check passed, 1 with the failed check on stderr otherwise.
"""

import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

BASE, ROOT, ARTIFACTS = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
TOKEN = sys.argv[4] if len(sys.argv) > 4 else None
os.makedirs(ARTIFACTS, exist_ok=True)


class CheckFailed(Exception):
    pass


def api(path, method="GET", body=None):
    request = urllib.request.Request(BASE + path, method=method, data=None if body is None else json.dumps(body).encode())
    if TOKEN:
        request.add_header("Authorization", "Bearer " + TOKEN)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def wait_for(what, condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # the page re-renders between lookups: a vanished element is "not yet"
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            shot("failed-" + what.replace(" ", "-")[:60])
            raise CheckFailed(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.05)


def shot(name):
    driver.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))


def rows(table):
    return driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-job]")


def row_for(table, name):
    for row in rows(table):
        if name in row.text:
            return row
    return None


def drop(name, content="payload\n"):
    staging = os.path.join(ROOT, "stage-" + name)
    with open(staging, "w") as handle:
        handle.write(content)
    os.rename(staging, os.path.join(ROOT, "Inbox", name))  # arrives whole, as a writer that renames does


def console_errors():
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2000"):
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(options=options, service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))
driver.set_page_load_timeout(20)

try:
    driver.get(BASE + "/")
    if TOKEN:
        wait_for("the login form", lambda: driver.find_element(By.ID, "login").is_displayed())
        shot("01-login")
        field = driver.find_element(By.ID, "token")
        field.send_keys("not-the-token")
        driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
        wait_for("'wrong token' on a wrong token", lambda: "wrong token" in driver.find_element(By.ID, "login-error").text)
        field.clear()
        field.send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
        # 401s of the wrong token are the browser's own console lines; only what follows must be clean.
        driver.get_log("browser")

    wait_for("the dashboard", lambda: driver.find_element(By.ID, "dashboard").is_displayed())
    wait_for("the daemon shown running", lambda: "daemon running" in driver.find_element(By.ID, "daemon").text)
    shot("02-loaded")
    errors = console_errors()
    if errors:
        raise CheckFailed(f"console errors on load: {errors}")

    # A dropped file shows up and is shown done within 2 s of the drop.
    dropped_at = time.monotonic()
    drop("dash-ok.txt")
    wait_for("dash-ok.txt shown done", lambda: (row := row_for("recent", "dash-ok.txt")) and row.get_attribute("data-state") == "done", timeout=2.0)
    shown_after = time.monotonic() - dropped_at
    if not os.path.exists(os.path.join(ROOT, "Done", "dash-ok.txt")):
        raise CheckFailed("dash-ok.txt is shown done but is not in Done/")
    shot("03-done")

    # Replay from the Failed list: a new job for the same file, which fails again (its worker always refuses it).
    drop("bad-file.txt")
    failed_row = wait_for("bad-file.txt in the Failed list", lambda: row_for("failed", "bad-file.txt"))
    first_job = int(failed_row.get_attribute("data-job"))
    shot("04-failed")
    failed_row.find_element(By.CSS_SELECTOR, "button[data-action=replay]").click()
    wait_for("a second job for bad-file.txt after replay",
             lambda: (row := row_for("failed", "bad-file.txt")) and int(row.get_attribute("data-job")) > first_job)
    replayed = [job for job in api("/api/v1/jobs?limit=100")["jobs"] if job.get("name") == "bad-file.txt"]
    if len(replayed) < 2:
        raise CheckFailed(f"replay did not make a new job: {replayed}")
    shot("05-replayed")

    # Cancel from the running list: the worker's group ends, the file goes to Failed/ with the reason.
    drop("slow-file.txt")
    running_row = wait_for("slow-file.txt running", lambda: row_for("running", "slow-file.txt"))
    job = int(running_row.get_attribute("data-job"))
    shot("06-running")
    running_row.find_element(By.CSS_SELECTOR, "button[data-action=cancel]").click()
    wait_for("slow-file.txt in Failed/", lambda: os.path.exists(os.path.join(ROOT, "Failed", "slow-file.txt")), timeout=15)
    detail = api(f"/api/v1/jobs/{job}")
    if detail.get("state") != "failed" or "cancelled" not in (detail.get("reason") or ""):
        raise CheckFailed(f"cancelled job reads {detail.get('state')}: {detail.get('reason')}")
    wait_for("the cancelled job off the running list", lambda: row_for("running", "slow-file.txt") is None)
    shot("07-cancelled")

    # The chart of the last hour counts what ended (it follows the counts at most every 5 s).
    wait_for("the chart counting the finished jobs",
             lambda: int(driver.find_element(By.ID, "chart").get_attribute("data-finished") or 0) >= 4, timeout=12)
    shot("08-chart")

    errors = console_errors()
    if errors:
        raise CheckFailed(f"console errors: {errors}")
    print(f"dashboard ok: dropped file shown done after {shown_after:.2f} s; replay and cancel worked; screenshots in {ARTIFACTS}")
except CheckFailed as failure:
    print(f"dashboard check failed: {failure}", file=sys.stderr)
    sys.exit(1)
finally:
    driver.quit()
