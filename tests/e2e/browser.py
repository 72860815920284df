"""A thin layer over Selenium that finds NiceGUI/Quasar elements the way a person does: by text.

NiceGUI's `.mark()` markers live only on the server, so the browser tests go by what is on
the screen: field labels, button captions, table cells and notifications.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")
WAIT_SECONDS = 30.0
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
)


def literal(text: str) -> str:
    """An XPath string literal for any text, quotes included."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


@dataclass
class Browser:
    driver: webdriver.Chrome
    base_url: str
    downloads: Path
    screenshot_prefix: Path
    console_errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, chromium: str, chromedriver: str, base_url: str, profile: Path, downloads: Path,
              screenshot_prefix: Path) -> Browser:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
        })
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        return cls(driver=driver, base_url=base_url, downloads=downloads, screenshot_prefix=screenshot_prefix)

    # -- navigation and checks -----------------------------------------------------------

    def open(self, path: str) -> None:
        self.collect_console_errors()
        self.driver.get(self.base_url + path)
        self.wait_for_app()

    def wait_for_app(self) -> None:
        """NiceGUI pages are built by Vue after load: wait until the app is mounted and connected."""
        self.wait(lambda _: self.driver.execute_script(
            "return document.readyState === 'complete' && !!document.querySelector('#app .nicegui-content') "
            "&& window.did_handshake === true"
        ), "the NiceGUI page to load and connect")

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url).split("?")[0]

    def log_in(self, username: str, password: str) -> None:
        self.open("/login")
        self.fill("Username", username)
        self.fill("Password", password)
        self.click_button("Log in")
        self.wait(lambda _: self.path == "/products", "the products page after logging in")
        self.wait_for_app()

    def collect_console_errors(self) -> list[dict[str, Any]]:
        """Chromium's console log is drained on read: keep every SEVERE entry seen so far."""
        for entry in self.driver.get_log("browser"):
            if entry["level"] == "SEVERE":
                self.console_errors.append(entry)
        return self.console_errors

    def assert_no_console_errors(self) -> None:
        errors = self.collect_console_errors()
        assert not errors, "the browser console logged errors:\n" + "\n".join(e["message"] for e in errors)

    def screenshot(self, step: str = "") -> None:
        """Save `<test>.png`, or `<test>-<step>.png` mid-test, once Quasar's transitions have settled."""
        path = self.screenshot_prefix.with_name(self.screenshot_prefix.name + (f"-{step}" if step else "") + ".png")
        path.parent.mkdir(exist_ok=True)
        try:
            with suppress(TimeoutException):
                self.wait(lambda _: not self.driver.find_elements(By.CSS_SELECTOR, "[class*='-enter-active']"),
                          "animations to finish", seconds=5)
            self.driver.save_screenshot(str(path))
        except WebDriverException:
            pass  # a crashed browser has already failed the test; the screenshot is a bonus

    def quit(self) -> None:
        self.driver.quit()

    # -- waiting -------------------------------------------------------------------------

    def wait(self, condition: Callable[[webdriver.Chrome], T], what: str, seconds: float = WAIT_SECONDS) -> T:
        return WebDriverWait(self.driver, seconds, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(
            condition, f"timed out after {seconds} s waiting for {what}")

    def visible_with_text(self, text: str) -> list[WebElement]:
        """Innermost visible elements whose text contains `text` (NiceGUI's page data script excluded)."""
        xpath = (f"//body//*[not(self::script)][contains(normalize-space(.), {literal(text)}) "
                 f"and not(*[contains(normalize-space(.), {literal(text)})])]")
        return [element for element in self.driver.find_elements(By.XPATH, xpath) if element.is_displayed()]

    def wait_for_text(self, text: str, seconds: float = WAIT_SECONDS) -> WebElement:
        return self.wait(lambda _: next(iter(self.visible_with_text(text)), None), repr(text), seconds)

    def wait_until_gone(self, text: str, seconds: float = WAIT_SECONDS) -> None:
        self.wait(lambda _: not self.visible_with_text(text), f"{text!r} to go", seconds)

    def page_text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    # -- elements by what the user sees --------------------------------------------------

    def field(self, label: str, within: str = "") -> WebElement:
        """The <input>/<textarea> of the Quasar field labelled `label` (exact label text)."""
        xpath = (f"{within}//label[contains(@class, 'q-field')][.//*[contains(@class, 'q-field__label') and "
                 f"normalize-space(.)={literal(label)}]]//*[self::input or self::textarea]")
        return self.wait(expected_conditions.visibility_of_element_located((By.XPATH, xpath)), f"field {label!r}")

    def fill(self, label: str, value: str, within: str = "") -> WebElement:
        element = self.field(label, within)
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE)
        element.send_keys(value)
        return element

    def button(self, caption: str, within: str = "") -> WebElement:
        """A button by its caption, or by its tooltip/aria-label for icon-only buttons."""
        xpath = (f"{within}//button[.//span[contains(@class, 'block') and normalize-space(.)={literal(caption)}] "
                 f"or @aria-label={literal(caption)} or @title={literal(caption)}]")
        return self.wait(expected_conditions.element_to_be_clickable((By.XPATH, xpath)), f"button {caption!r}")

    def icon_button(self, icon: str, within: str = "") -> WebElement:
        """An icon-only button, by its Material icon name (the icon font's ligature text)."""
        xpath = f"{within}//button[.//i[contains(@class, 'q-icon') and normalize-space(.)={literal(icon)}]]"
        return self.wait(expected_conditions.element_to_be_clickable((By.XPATH, xpath)), f"the {icon!r} button")

    def click_button(self, caption: str, within: str = "") -> None:
        self.click(self.button(caption, within))

    def click(self, element: WebElement) -> None:
        """Scroll into view first: Quasar headers can cover elements at the page's top."""
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def dialog(self) -> str:
        """An XPath prefix for the open Quasar dialog, to find things inside it only."""
        self.wait(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".q-dialog")), "a dialog")
        return "//div[contains(@class, 'q-dialog')]"

    def notification(self, text: str, seconds: float = WAIT_SECONDS) -> WebElement:
        xpath = f"//div[contains(@class, 'q-notification')][contains(normalize-space(.), {literal(text)})]"
        return self.wait(expected_conditions.visibility_of_element_located((By.XPATH, xpath)),
                         f"a notification saying {text!r}", seconds)

    def upload_file(self, path: Path) -> None:
        """Hand a file to a NiceGUI ui.upload (QUploader) through its hidden file input."""
        file_input = self.wait(
            expected_conditions.presence_of_element_located((By.XPATH, "//input[@type='file']")),
            "a file input")
        file_input.send_keys(str(path))

    def table_rows(self) -> list[list[str]]:
        rows = self.driver.find_elements(By.XPATH, "//table/tbody/tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    def wait_for_download(self, suffix: str, seconds: float = WAIT_SECONDS) -> Path:
        """The first finished download with this suffix (Chromium writes .crdownload until done)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            done = [p for p in self.downloads.iterdir() if p.name.endswith(suffix)]
            if done and not any(p.name.endswith(".crdownload") for p in self.downloads.iterdir()):
                return done[0]
            time.sleep(0.1)
        raise AssertionError(f"no {suffix} download appeared in {self.downloads} within {seconds} s")
