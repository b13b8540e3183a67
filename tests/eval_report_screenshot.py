"""The README's screenshot of the evaluation report, and the sample report its tests share.

    python -m tests.eval_report_screenshot [docs/eval-report.png]

writes the report of a made-up evaluation (40 support questions of a small SaaS, with
a plausible spread of confidence and agreement, three hand-offs and one failed pair)
with `write_report`, as `python main.py eval --out DIR` does, opens its report.html in
headless Chromium and saves a PNG 1280 px wide, tall enough for the figures, the chart
and the worst answers. It needs Debian's chromium and chromium-driver (see
`tests/playground_screenshot.py`, whose browser plumbing it uses).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from selenium.webdriver.chrome.webdriver import WebDriver

from intercom_responder.adapters.eval_report import write_report
from intercom_responder.core.evaluation import (
    Bucket,
    PairResult,
    Summary,
    calibration,
    lexical_similarity,
    summarize,
    worst_sent,
)
from tests.playground_screenshot import WIDTH, browser_paths, png_size, start_chrome

THRESHOLD = 0.8
TARGET = 0.9
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "docs" / "eval-report.png"
#: 2024-03-04 09:00 UTC; the questions are an hour apart from there
FIRST_ASKED = 1_709_542_800

# question, the teammate's answer, the draft, confidence, agreement, the judge's reason
SAMPLE: tuple[tuple[str, str, str, float, float, str], ...] = (
    (
        "How do I reset my password?",
        "Go to Settings > Security and click Reset password; the link is valid for an hour.",
        "Open Settings > Security and choose Reset password. The emailed link works for one hour.",
        0.95,
        0.97,
        "Same steps, same validity.",
    ),
    (
        "Can I change the email address on my account?",
        "Yes, under Settings > Profile. We send a confirmation to the new address.",
        "Yes: Settings > Profile > Email. Confirm the change from the mail we send to the "
        "new address.",
        0.93,
        0.95,
        "Same answer.",
    ),
    (
        "Where can I download my invoices?",
        "Billing > Invoices, with a PDF button next to each invoice.",
        "All invoices are under Billing > Invoices; each has a PDF download.",
        0.96,
        1.0,
        "Identical in substance.",
    ),
    (
        "Do you offer a discount for non-profits?",
        "Yes, 50 % on any plan. Send us proof of your non-profit status and we apply it.",
        "We offer a 20 % discount for non-profits on the annual plan.",
        0.86,
        0.2,
        "Wrong percentage and wrong condition: the discount is 50 % on any plan.",
    ),
    (
        "How long does a refund take?",
        "Refunds reach your card within 5-7 business days.",
        "A refund is back on your card within 5-7 business days.",
        0.91,
        0.96,
        "Same timeframe.",
    ),
    (
        "Can I pay by bank transfer?",
        "On annual plans, yes: choose Invoice at checkout. Monthly plans need a card.",
        "Yes, bank transfer is available on every plan.",
        0.84,
        0.35,
        "Misses that monthly plans need a card.",
    ),
    (
        "Is there an API?",
        "Yes, a REST API on the Pro plan and up; the docs are at Settings > Developers.",
        "Yes. The REST API comes with Pro and Business; find your key and the docs in "
        "Settings > Developers.",
        0.92,
        0.93,
        "Same plans, same place.",
    ),
    (
        "How do I add a teammate?",
        "Settings > Team > Invite. Each seat is billed from the day it is added.",
        "Invite them from Settings > Team. New seats are billed pro rata.",
        0.9,
        0.88,
        "Right place; 'pro rata' is close to 'from the day it is added'.",
    ),
    (
        "My export to CSV is empty, what is wrong?",
        "Exports only include the filtered view: clear the filters and export again.",
        "Please try another browser and clear your cache.",
        0.55,
        0.1,
        "Generic advice; misses the filter cause.",
    ),
    (
        "Can I export my data before cancelling?",
        "Yes, Settings > Data > Export all gives you a ZIP of everything within an hour.",
        "Yes. Use Settings > Data > Export all; we email you a ZIP, usually within the hour.",
        0.89,
        0.94,
        "Same.",
    ),
    (
        "Do you support single sign-on?",
        "SAML SSO is part of the Business plan (Okta, Azure AD, Google).",
        "SSO with SAML is available on Business, with Okta, Azure AD and Google Workspace.",
        0.88,
        0.92,
        "Same plan and providers.",
    ),
    (
        "Why was I charged twice this month?",
        "The second charge is the seat you added on the 12th; it is on the same invoice.",
        "Duplicate charges are refunded automatically within 5-7 days.",
        0.72,
        0.15,
        "Assumes a duplicate; the teammate found an added seat.",
    ),
    (
        "How do I delete my account?",
        "Settings > Account > Delete account. Data is removed after 30 days.",
        "Go to Settings > Account and click Delete account; your data is deleted after 30 days.",
        0.94,
        0.98,
        "Same.",
    ),
    (
        "Is my data stored in the EU?",
        "Yes, all data is stored in Frankfurt (AWS eu-central-1).",
        "Yes, we host everything in the EU (Frankfurt).",
        0.87,
        0.9,
        "Same region; leaves out the provider.",
    ),
    (
        "Can I get a copy of your DPA?",
        "Yes, you can sign it online under Settings > Legal.",
        "I will ask our legal team to email you the DPA.",
        0.64,
        0.45,
        "Right that a DPA exists; the teammate pointed to self-service signing.",
    ),
    (
        "The mobile app crashes when I open a report.",
        "Known bug in 3.2.0, fixed in 3.2.1 which is in the stores since this morning.",
        "Please reinstall the app and send us the crash log if it happens again.",
        0.48,
        0.2,
        "Does not know about the fixed release.",
    ),
    (
        "How do I change my plan?",
        "Billing > Plan > Change plan; upgrades apply at once, downgrades at renewal.",
        "Under Billing > Plan you can switch plans. Upgrades are immediate; downgrades "
        "take effect at the next renewal.",
        0.93,
        0.97,
        "Same.",
    ),
    (
        "Can I have a trial extension?",
        "Sure, I extended your trial by 7 days.",
        "Trials last 14 days and cannot be extended.",
        0.81,
        0.05,
        "Contradicts the teammate, who extended the trial.",
    ),
    (
        "Do you integrate with Slack?",
        "Yes, Settings > Integrations > Slack; notifications go to a channel you choose.",
        "Yes. Connect Slack under Settings > Integrations and pick the channel for notifications.",
        0.9,
        0.95,
        "Same.",
    ),
    (
        "How many users can I have on the Starter plan?",
        "Up to 5 users on Starter.",
        "Starter includes up to 10 users.",
        0.83,
        0.0,
        "Wrong number: Starter has 5 users.",
    ),
    (
        "Where do I find my API key?",
        "Settings > Developers > API keys; you can create several and revoke them.",
        "Your API keys are under Settings > Developers > API keys.",
        0.95,
        0.9,
        "Right place; leaves out that keys can be revoked.",
    ),
    (
        "Can I import contacts from a spreadsheet?",
        "Yes, Contacts > Import takes CSV or XLSX with a header row.",
        "Yes, import CSV files under Contacts > Import.",
        0.85,
        0.8,
        "Right, but does not mention XLSX.",
    ),
    (
        "Is two-factor authentication available?",
        "Yes, Settings > Security > Two-factor, with an authenticator app or a security key.",
        "Yes. Turn it on under Settings > Security > Two-factor (app or security key).",
        0.97,
        0.99,
        "Same.",
    ),
    (
        "The invoice shows the wrong company name.",
        "Change it under Billing > Details; I re-issued your last invoice with the new name.",
        "You can edit the billing name under Billing > Details; future invoices use it.",
        0.78,
        0.6,
        "Right setting; the teammate also re-issued the invoice.",
    ),
    (
        "Why can't I log in with Google anymore?",
        "Your workspace admin turned on SSO-only login; ask them to add you in Okta.",
        "Please reset your password and try again.",
        0.42,
        0.05,
        "Unrelated to the SSO cause.",
    ),
    (
        "Do you have a status page?",
        "Yes: status.example.com, with email alerts if you subscribe.",
        "Our status page is status.example.com; you can subscribe to alerts there.",
        0.92,
        0.96,
        "Same.",
    ),
    (
        "Can I schedule reports to be emailed?",
        "Yes, open the report, click Schedule and pick the recipients and the time.",
        "Yes: on any report, Schedule lets you choose who gets it and when.",
        0.88,
        0.91,
        "Same.",
    ),
    (
        "What happens to my data if I downgrade to Free?",
        "Nothing is deleted; projects above the Free limit become read-only.",
        "Projects over the Free limit are archived after 30 days.",
        0.76,
        0.3,
        "Wrong: they become read-only, nothing is archived.",
    ),
    (
        "Can I use my own domain for the help center?",
        "Yes, on Pro: add a CNAME to help.example.com under Settings > Domain.",
        "Yes, custom domains are on Pro and up. Add a CNAME record pointing to "
        "help.example.com in Settings > Domain.",
        0.86,
        0.93,
        "Same.",
    ),
    (
        "How do I cancel my subscription?",
        "Billing > Plan > Cancel; you keep access until the end of the paid period.",
        "Cancel under Billing > Plan > Cancel. Access continues until the period ends.",
        0.94,
        0.97,
        "Same.",
    ),
    (
        "Do you offer phone support?",
        "Phone support is on the Business plan; everyone else gets chat and email.",
        "We offer support by chat and email.",
        0.7,
        0.55,
        "Leaves out phone support on Business.",
    ),
    (
        "Can I restore a deleted project?",
        "Within 30 days, yes: Trash > Restore. After that it is gone.",
        "Deleted projects stay in the Trash for 30 days and can be restored from there.",
        0.91,
        0.95,
        "Same.",
    ),
    (
        "Is there a limit on file uploads?",
        "100 MB per file on all plans.",
        "Uploads are limited to 25 MB per file.",
        0.8,
        0.1,
        "Wrong limit: 100 MB.",
    ),
    (
        "Does the calendar sync with Outlook?",
        "Yes, two-way sync with Outlook and Google Calendar under Integrations.",
        "Yes, you can connect Outlook under Integrations; changes sync both ways.",
        0.87,
        0.88,
        "Right; leaves out Google Calendar.",
    ),
    (
        "How do I get a receipt for my company's expense report?",
        "Each invoice doubles as a receipt: Billing > Invoices > PDF.",
        "Invoices under Billing > Invoices work as receipts; download the PDF.",
        0.9,
        0.93,
        "Same.",
    ),
    (
        "Can you add VAT ID to my invoices?",
        "Yes, enter it under Billing > Details and it shows on every new invoice.",
        "Add your VAT ID in Billing > Details; it appears on invoices from then on.",
        0.89,
        0.95,
        "Same.",
    ),
    (
        "Your app deleted all my work, this is unacceptable! I want a refund now.",
        "I'm so sorry. I restored your projects from Trash and refunded this month.",
        "We are sorry to hear that. Deleted projects can be restored from the Trash.",
        0.82,
        0.4,
        "Partly right; misses the refund.",
    ),
    (
        "I want to talk to a real person about our contract.",
        "Of course, I'm here. What would you like to change in the contract?",
        "",
        0.0,
        0.0,
        "",
    ),
    (
        "I've asked three times now and nobody helps me. Our sync is broken for days.",
        "Sorry for the wait. The sync stalled on a token; I reconnected it, it is running.",
        "Please reconnect the integration under Settings > Integrations.",
        0.74,
        0.5,
        "Right fix, but the teammate did it for the customer.",
    ),
    (
        "Is there a limit on the number of projects?",
        "No limit on Pro and Business; Free has 3 projects.",
        "Pro and Business have unlimited projects; Free allows 3.",
        0.9,
        0.97,
        "Same.",
    ),
)
#: the pairs a rule other than the confidence decides: index -> action, rule, reason
SPECIAL = {
    36: ("handoff", "escalation_keyword", "the customer's message mentions 'unacceptable'"),
    37: ("handoff", "human_requested", "the customer asked for a human"),
    38: ("handoff", "customer_frustrated", "the model says the customer is frustrated"),
}
FAILED = {15: "the judge did not answer: timed out after 60 s"}


@dataclass(frozen=True)
class SampleReport:
    summary: Summary
    calibration: list[Bucket]
    results: list[PairResult]
    worst: list[PairResult]


def sample_results() -> list[PairResult]:
    results: list[PairResult] = []
    for index, (question, expected, draft, confidence, agreement, why) in enumerate(SAMPLE):
        if index in SPECIAL:
            action, rule, reason = SPECIAL[index]
        elif confidence >= THRESHOLD:
            action, rule = "reply", "confident"
            reason = f"confidence {confidence:.2f} is at or above the threshold {THRESHOLD:.2f}"
        else:
            action, rule = "review", "low_confidence"
            reason = f"confidence {confidence:.2f} is below the threshold {THRESHOLD:.2f}"
        error = FAILED.get(index)
        results.append(
            PairResult(
                index=index,
                conversation_id=str(215_000_000 + 37 * index),
                question=question,
                expected=expected,
                asked_at=FIRST_ASKED + 3600 * index,
                draft=draft,
                confidence=confidence,
                action=action,
                rule=rule,
                reason=reason,
                agreement=None if error or not draft else agreement,
                judge_reason="" if error else why,
                similarity=lexical_similarity(draft, expected),
                error=error,
            )
        )
    return results


def sample_report() -> SampleReport:
    results = sample_results()
    return SampleReport(
        summary=summarize(results, threshold=THRESHOLD, target=TARGET),
        calibration=calibration(results),
        results=results,
        worst=worst_sent(results),
    )


def write_sample(out_dir: Path) -> Path:
    """The sample's eval.json, eval.csv and report.html in `out_dir`; the page's path."""
    report = sample_report()
    paths = write_report(out_dir, report.summary, report.calibration, report.results, report.worst)
    return paths[-1]


def fit_height(driver: WebDriver, height: int) -> None:
    """Make the page itself WIDTH x `height` (the window's frame counts in its size)."""
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    outer = driver.get_window_size()
    driver.set_window_size(
        outer["width"] + WIDTH - int(inner[0]), outer["height"] + height - int(inner[1])
    )


def take_screenshot(path: Path) -> Path:
    chromium, chromedriver = browser_paths()
    if not chromium or not chromedriver:
        raise SystemExit(
            "install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver) to take the screenshot"
        )
    with tempfile.TemporaryDirectory() as tmp:
        page = write_sample(Path(tmp) / "report")
        driver = start_chrome(chromium, chromedriver)
        try:
            driver.get(page.as_uri())
            # down to the end of the worst answers, the part a reader looks at first
            bottom = driver.execute_script(
                "const r = document.querySelector('[data-test=\"worst\"]')"
                ".closest('section').getBoundingClientRect();"
                "return Math.ceil(r.bottom + window.scrollY) + 14"
            )
            fit_height(driver, int(bottom))
            path.parent.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(path)), f"could not save {path}"
            return path
        finally:
            driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.eval_report_screenshot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "path", type=Path, nargs="?", default=DEFAULT_PATH, help="docs/eval-report.png"
    )
    args = parser.parse_args(argv)
    saved = take_screenshot(args.path)
    width, height = png_size(saved)
    print(f"saved {saved} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
