"""The page in a real headless browser (Debian's chromium, driven by selenium through chromedriver):
open it, upload the example song through the file input, protect a 3-second preview, play both
A/B players, download, and check that the download is byte for byte what the CLI writes.

Set HARMONYCLOAK_SCREENSHOT=PATH to keep a screenshot of the finished page (docs/app-screenshot.png
is made so).
"""

import os
import shutil
import threading

import numpy as np
import pytest
import soundfile

from app_helpers import QUICK_FORM, WAIT_LIMIT_S, cli_output_bytes, wait_until

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (bash setup.sh --test installs them)")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
pytest.importorskip("uvicorn", reason="the app's packages are not installed (pip install -e '.[app]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from harmonycloak.app.app_settings import AppSettings  # noqa: E402
from harmonycloak.app.cli import address, bind  # noqa: E402
from harmonycloak.app.server import create_app  # noqa: E402


@pytest.fixture
def server_address(tmp_path):
    """The app (seconds-fast surrogates) served on a free loopback port from a thread of this process."""
    import uvicorn

    listening = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(AppSettings(model_preset="tiny"), root=tmp_path / "root"),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the server's start")
    yield address(listening)
    server.should_exit = True
    thread.join(60)
    listening.close()
    assert not (tmp_path / "root").exists()  # stopping the app removed its files


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1500",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def is_playing(driver, player) -> bool:
    return driver.execute_script("return !arguments[0].paused && arguments[0].currentTime > 0.2", player)


def test_protect_in_the_browser_play_ab_and_download_the_clis_bytes(server_address, browser, example_song, tmp_path):
    browser.get(server_address)
    wait = WebDriverWait(browser, WAIT_LIMIT_S)
    wait.until(lambda driver: Select(driver.find_element(By.ID, "strength")).options)
    Select(browser.find_element(By.ID, "strength")).select_by_value(QUICK_FORM["strength"])
    for field, key in (("preview-s", "preview_s"), ("rounds", "rounds"), ("seed", "seed")):
        browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, field).send_keys(QUICK_FORM[key])
    browser.find_element(By.ID, "file-input").send_keys(str(example_song))

    job = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "li.job[data-state=done]"))[0]
    assert "inaudible by our checks: " in job.find_element(By.CLASS_NAME, "verdict").text
    wait.until(lambda driver: driver.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", job.find_element(By.CLASS_NAME, "report")))

    original, protected = job.find_element(By.CLASS_NAME, "ab-original"), job.find_element(By.CLASS_NAME, "ab-protected")
    job.find_element(By.CLASS_NAME, "play-original").click()
    wait.until(lambda driver: is_playing(driver, original))
    job.find_element(By.CLASS_NAME, "play-protected").click()
    wait.until(lambda driver: is_playing(driver, protected))
    assert browser.execute_script("return arguments[0].paused", original)  # A/B: one at a time
    assert browser.execute_script("return arguments[0].duration", protected) == pytest.approx(3.0, abs=0.01)
    browser.execute_script("arguments[0].pause()", protected)
    if os.environ.get("HARMONYCLOAK_SCREENSHOT"):
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(os.environ["HARMONYCLOAK_SCREENSHOT"])

    job.find_element(By.CLASS_NAME, "download").click()
    downloaded = browser.downloads / "elf-land.preview.ogg"
    wait_until(lambda: downloaded.exists() and not list(browser.downloads.glob("*.crdownload")), "the download")
    (tmp_path / "cli").mkdir()
    assert downloaded.read_bytes() == cli_output_bytes(example_song, tmp_path / "cli")


def test_a_folder_and_a_drop_queue_their_readable_files(server_address, browser, tmp_path):
    browser.get(server_address)
    wait = WebDriverWait(browser, WAIT_LIMIT_S)
    wait.until(lambda driver: Select(driver.find_element(By.ID, "strength")).options)
    browser.find_element(By.ID, "rounds").clear()
    browser.find_element(By.ID, "rounds").send_keys("1")
    folder = tmp_path / "album"
    (folder / "disc 2").mkdir(parents=True)
    soundfile.write(folder / "disc 2" / "take.wav", 0.3 * np.sin(np.arange(11_025) / 22_050 * 2 * np.pi * 440), 22_050)
    (folder / "lyrics.txt").write_text("not music")
    browser.find_element(By.ID, "folder-input").send_keys(str(folder))
    wait.until(lambda driver: "1 file(s) left out" in driver.find_element(By.ID, "messages").text)
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "li.job[data-state=done]"))
    # a drop: the page's drop handler with the file the folder gave, fetched back from the app
    browser.execute_script("""
        const done = arguments[0];
        fetch(`/api/jobs/${done}/output`).then((response) => response.blob()).then((blob) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([blob], "dropped.wav", { type: "audio/wav" }));
          document.getElementById("drop-zone").dispatchEvent(
            new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        });""", browser.find_element(By.CSS_SELECTOR, "li.job[data-state=done]").get_attribute("data-id"))
    rows = wait.until(lambda driver: len(found := driver.find_elements(By.CSS_SELECTOR, "li.job[data-state=done]")) == 2
                      and found)
    assert [row.find_element(By.CLASS_NAME, "name").text for row in rows] == ["take.wav", "dropped.wav"]
    assert "2 of 2 file(s) protected" in browser.find_element(By.ID, "overall-text").text
