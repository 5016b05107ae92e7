#!/usr/bin/env python3
"""Records Tests/Fixtures/chromium.har: headless Chromium (through Playwright's HAR recorder) browsing the
fixture backend. Run once by hand; the HAR is committed, so the tests need neither Chromium nor Playwright.

    apt-get install chromium && pip install playwright
    python3 Tests/Fixtures/backend.py 3000 &
    python3 Tests/Fixtures/record-har.py http://127.0.0.1:3000 Tests/Fixtures/chromium.har
"""
import sys
from playwright.sync_api import sync_playwright

base, out = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    context = browser.new_context(record_har_path=out, record_har_content="embed")
    page = context.new_page()
    page.goto(base + "/echo?from=browser")
    page.evaluate("""async () => {
        // Bodies are read, so that the HAR keeps them.
        await (await fetch('/orders', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({item: 1})})).text();
        await (await fetch('/orders')).text();
        await (await fetch('/status/404')).text();
    }""")
    context.close()
    browser.close()
