"""The access pages in a real browser: users, the policy editor and the simulator."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


READ_ALL = {"Sid": "ReadAll", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}
NOT_PROD = {
    "Sid": "NotProd",
    "Effect": "Deny",
    "Action": "ssm:GetParameter",
    "Resource": "arn:aws:ssm:*:*:parameter/prod/*",
}


def test_an_admin_writes_a_policy_attaches_it_and_simulates_a_denied_request(
    signed_in_page: Page, screenshots: Path
):
    page = signed_in_page
    suffix = secrets.token_hex(3)
    username, policy_name = f"dana-{suffix}", f"AppReader-{suffix}"

    # A user, created through the form.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Create user").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Initial password").fill("a long enough passphrase")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name=f"User {username}", level=1)).to_be_visible()

    # The editor refuses a document naming an unknown action, saying where it is.
    page.goto("/access/policies/new/")
    page.get_by_label("Name").fill(policy_name)
    page.get_by_label("Description").fill("Reads app parameters, never prod ones")
    typo = {**NOT_PROD, "Action": "ssm:GetParamter"}
    page.get_by_label("Policy document (JSON)").fill(policy(READ_ALL, typo))
    page.get_by_role("button", name="Create policy").click()
    error = page.locator("#policy-error")
    expect(error).to_contain_text("not saved")
    expect(error).to_contain_text('Statement 1 (Sid "NotProd"): Action')
    expect(page.get_by_label("Policy document (JSON)")).to_have_value(re.compile("GetParamter"))
    page.screenshot(path=screenshots / "access-policy-editor-error.png", full_page=True)

    # Fixed, it is saved and shown.
    page.get_by_label("Policy document (JSON)").fill(policy(READ_ALL, NOT_PROD))
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("heading", name=f"Policy {policy_name}", level=1)).to_be_visible()
    expect(page.locator("#policy-document")).to_contain_text('"Sid": "NotProd"')

    # Attached to the user from their page.
    page.goto("/access/users/")
    page.get_by_role("link", name=username, exact=True).click()
    page.get_by_label("Policy to attach").select_option(label=policy_name)
    page.get_by_role("button", name="Attach policy").click()
    expect(page.get_by_role("link", name=policy_name)).to_be_visible()
    page.screenshot(path=screenshots / "access-user-detail.png", full_page=True)

    # An access key: the secret shows once, with the warning, and is gone after.
    page.get_by_role("button", name="Create access key").click()
    expect(page.get_by_text("Copy the secret access key now.")).to_be_visible()
    secret = page.get_by_label("Secret access key").input_value()
    assert len(secret) == 40
    page.screenshot(path=screenshots / "access-key-created.png", full_page=True)
    page.get_by_role("link", name=re.compile("I have copied it")).click()
    expect(page.get_by_role("heading", name=f"User {username}", level=1)).to_be_visible()
    assert secret not in page.content()
    page.goto("/access/users/")
    expect(page.get_by_role("row").filter(has_text=username)).to_contain_text(policy_name)
    page.screenshot(path=screenshots / "access-users.png", full_page=True)

    # The simulator names the statement that denies a prod read.
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Policy simulator"
    ).click()
    page.get_by_label("User").select_option(label=username)
    page.get_by_label("Action").fill("ssm:GetParameter")
    page.get_by_label("Resource ARN").fill("arn:aws:ssm:us-east-1:123456789012:parameter/prod/db")
    page.get_by_role("button", name="Simulate").click()
    result = page.locator("#simulation-result")
    expect(result).to_contain_text("Denied (explicit deny)")
    expect(page.locator("#deciding-statement")).to_contain_text(
        f"Policy {policy_name}, statement 1 (Sid NotProd)"
    )
    expect(result.locator("pre")).to_contain_text("parameter/prod/*")
    page.screenshot(path=screenshots / "access-simulator.png", full_page=True)
