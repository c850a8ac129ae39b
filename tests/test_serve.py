"""The browser demo: its JSON API in-process (answers, refusals, still serving after a bad
request, loading progress) and the real command driven through headless Chromium (a query,
a click, an upload, a bad upload), checking what the page shows against the gallery."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT
from lexmo_jax.inference import MotionFileError, motion_from_npy, read_motion_file
from lexmo_jax.serve import command
from lexmo_jax.serve.app import create_app
from lexmo_jax.serve.explorer import Explorer, draw_data, read_mode

SPLIT = "train"
INSTALL = ("headless Chromium and its driver are not installed: `apt-get install chromium "
           "chromium-driver` (Debian's packages; .ci/run installs them)")


@pytest.fixture(scope="module")
def explorer(chain, tmp_path_factory):
  ex = Explorer(str(chain["lexcmlp"]), SPLIT, str(tmp_path_factory.mktemp("serve") / "idx"))
  ex.load()
  assert ex.status()["ready"], ex.status()
  return ex


@pytest.fixture(scope="module")
def client(explorer):
  return create_app(explorer).test_client()


@pytest.fixture(scope="module")
def motion_files(explorer, tmp_path_factory):
  """A gallery motion saved as features and as joint positions, and a file of a wrong shape."""
  from input_pipeline.motion.features import features_to_joints
  folder = tmp_path_factory.mktemp("uploads")
  pair = next(iter(explorer.gallery().pairs.values()))
  np.save(folder / "features.npy", pair.motion)
  np.save(folder / "joints.npy", features_to_joints(pair.motion, 22))
  np.save(folder / "wrong.npy", np.zeros((50, 7), np.float32))
  return {"pair": pair, **{k: folder / f"{k}.npy" for k in ("features", "joints", "wrong")}}


def test_loading_reports_each_stage_then_serves(explorer):
  stages = " | ".join(explorer.stages)
  n = len(explorer.gallery().pairs)
  assert "loading the model" in stages and f"reading split '{SPLIT}'" in stages
  assert re.search(rf"encoding {n} motions: batch 1/\d+", stages), stages
  assert f"indexing {n} motions" in stages
  status = explorer.status()
  assert status["items"] == n and status["engine"] == "exact" and status["phase"] == "lexcmlp"


def test_a_request_before_the_gallery_is_ready_is_answered_503(chain, tmp_path):
  waiting = create_app(Explorer(str(chain["lexcmlp"]), SPLIT, str(tmp_path / "idx")))
  r = waiting.test_client().get("/api/search?q=run")
  assert r.status_code == 503 and "still loading (starting)" in r.get_json()["error"]
  assert waiting.test_client().get("/api/status").get_json()["ready"] is False


def test_search_answers_what_the_gallery_answers(client, explorer):
  gallery = explorer.gallery()
  r = client.get("/api/search", query_string={"q": "a person walks forward", "k": 4}).get_json()
  _, hits = gallery.search_text("a person walks forward", 4)
  assert r["mode"] == "sentence" and r["read_as"]
  assert [h["item_id"] for h in r["hits"]] == [h.item_id for h in hits]
  assert [h["words"][0][0] for h in r["hits"]] == [h.words[0][0] for h in hits]
  assert r["hits"][0]["captions"] == list(gallery.pairs[hits[0].item_id].captions)
  assert r["answered_by"] == "exact engine"  # the page names the engine that answered
  r = client.get("/api/search", query_string={"q": "walk, zzzqx", "k": 3}).get_json()
  assert r["mode"] == "keywords" and r["unknown"] == ["zzzqx"] and r["used"] == ["walk"]
  assert [h["item_id"] for h in r["hits"]] == [
      h.item_id for h in gallery.search_keywords(["walk"], 3).hits]


def test_auto_mode_reads_single_words_as_keywords():
  assert read_mode("run, jump", "auto") == "keywords"
  assert read_mode("jump", "auto") == "keywords"
  assert read_mode("a person runs", "auto") == "sentence"
  assert read_mode("a man waves, then crawls on his knees", "auto") == "sentence"
  assert read_mode("run", "keywords") == "keywords"
  with pytest.raises(ValueError, match="unknown query mode 'fuzzy'"):
    read_mode("run", "fuzzy")


def test_a_motion_has_description_captions_and_neighbours(client, explorer):
  item = sorted(explorer.gallery().pairs)[0]
  r = client.get("/api/motion", query_string={"id": item, "k": 3}).get_json()
  assert r["captions"] == list(explorer.gallery().pairs[item].captions)
  weights = [v for _, v in r["description"]]
  assert len(weights) >= 5 and weights == sorted(weights, reverse=True)
  assert [h["rank"] for h in r["neighbours"]] == [1, 2, 3]
  assert item not in [h["item_id"] for h in r["neighbours"]]
  joints = client.get("/api/joints", query_string={"id": item}).get_json()
  assert np.asarray(joints["frames"]).shape[1:] == (22, 3)
  assert joints["sides"] == ["right", "left", "centre", "right", "left"]


def test_bad_requests_get_one_line_and_the_app_keeps_serving(client, explorer, motion_files,
                                                             monkeypatch):
  assert client.get("/api/search?q=").status_code == 400
  r = client.get("/api/search", query_string={"q": "run", "k": 0})
  assert r.status_code == 400 and "k must lie between 1 and 50" in r.get_json()["error"]
  r = client.get("/api/motion", query_string={"id": "nope"})
  assert r.status_code == 404 and r.get_json()["error"] == f"no motion 'nope' in split '{SPLIT}'"
  assert client.post("/api/upload").status_code == 400
  data = motion_files["wrong"].read_bytes()
  r = client.post("/api/upload", data={"motion": (motion_files["wrong"].open("rb"), "wrong.npy")})
  with pytest.raises(MotionFileError) as command_line:
    motion_from_npy(data, "wrong.npy")
  assert r.status_code == 400 and r.get_json()["error"] == str(command_line.value)
  monkeypatch.setattr(explorer, "search", lambda *a: 1 / 0)
  r = client.get("/api/search?q=run")
  assert r.status_code == 500 and "ZeroDivisionError" in r.get_json()["error"]
  monkeypatch.undo()
  assert client.get("/api/search?q=run").status_code == 200


def test_uploads_of_features_and_of_joints_are_described(client, motion_files):
  for name in ("features", "joints"):
    with motion_files[name].open("rb") as f:
      r = client.post("/api/upload", data={"motion": (f, f"{name}.npy"), "k": "3"})
    body = r.get_json()
    assert r.status_code == 200, body
    assert len(body["hits"]) == 3 and body["description"]
    assert body["answered_by"] == "exact engine"
    assert body["frames"] == motion_files["pair"].motion.shape[0] - (name == "joints")
  # The search command reads joint positions too, with the same checks.
  assert read_motion_file(motion_files["joints"]).shape[1] == 263


def test_ctrl_c_while_the_gallery_loads_stops_at_once(chain, tmp_path):
  proc = subprocess.Popen(
      [sys.executable, "-m", "lexmo_jax.serve", f"--workdir={chain['lexcmlp']}",
       f"--split={SPLIT}", f"--index={tmp_path / 'idx'}", "--port=0"], cwd=ROOT, text=True,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  assert "serving" in proc.stdout.readline()
  time.sleep(1.0)  # loading the model: JAX at work in the loader thread
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=30) == 130
  assert proc.stdout.read().strip() == "stopped"
  assert "Traceback" not in proc.stderr.read()


def test_the_command_refuses_a_workdir_without_lexical_vectors(chain):
  r = subprocess.run([sys.executable, "-m", "lexmo_jax.serve", f"--workdir={chain['cmmm']}"],
                     cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
      f"error: --workdir {chain['cmmm']} is a 'cmmm' workdir; the demo reads the lexical "
      "vectors of a lexmmm or lexcmlp or captioning workdir")


def test_keyword_mode_splits_words_and_sentences_name_word_pieces(client):
  r = client.get("/api/search", query_string={"q": "walk jump", "mode": "keywords"}).get_json()
  assert r["used"] == ["walk", "jump"]
  r = client.get("/api/search", query_string={"q": "a person xyzzyqq"}).get_json()
  assert r["note"] == "not in the vocabulary as whole words, read as word pieces: xyzzyqq"


def test_a_one_frame_motion_is_described_and_drawn(client, motion_files, tmp_path):
  one = tmp_path / "one.npy"
  np.save(one, motion_files["pair"].motion[:1])
  with one.open("rb") as f:
    r = client.post("/api/upload", data={"motion": (f, "one.npy")})
  assert r.status_code == 200, r.get_json()
  assert r.get_json()["frames"] == 1 and len(r.get_json()["joints"]["frames"]) == 1


def test_draw_data_strides_to_about_ten_frames_a_second(motion_files):
  features = motion_files["pair"].motion
  data = draw_data(features, "humanml3d")
  assert data["fps"] == 10.0 and len(data["frames"]) == (features.shape[0] + 1) // 2


def test_the_command_refuses_a_taken_port_and_a_missing_workdir(tmp_path):
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    with pytest.raises(ValueError, match=f"port {port} on 127.0.0.1 is already in use"):
      command.check_port("127.0.0.1", port)
  r = subprocess.run([sys.executable, "-m", "lexmo_jax.serve", f"--workdir={tmp_path}/none"],
                     cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
      f"error: --workdir {tmp_path}/none does not exist")


# ---- the real command in a real browser ----------------------------------------------------
def _browser():
  chromium = shutil.which("chromium") or shutil.which("chromium-browser")
  driver = shutil.which("chromedriver")
  if not (chromium and driver):
    if os.environ.get("CI") == "true":
      pytest.fail(INSTALL)
    pytest.skip(INSTALL)
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top
  options = webdriver.ChromeOptions()
  options.binary_location = chromium
  for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1400,1000"):
    options.add_argument(arg)
  return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def served(chain, tmp_path_factory):
  """`python -m lexmo_jax.serve` on a free port; yields its URL."""
  index = tmp_path_factory.mktemp("served") / "idx"
  proc = subprocess.Popen(
      [sys.executable, "-m", "lexmo_jax.serve", f"--workdir={chain['lexcmlp']}",
       f"--split={SPLIT}", f"--index={index}", "--port=0"], cwd=ROOT, text=True,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  line = proc.stdout.readline()
  match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
  assert match, line + proc.stdout.read() if proc.poll() is not None else line
  yield match.group(1)
  proc.send_signal(signal.SIGINT)  # Ctrl-C once the gallery is ready
  assert proc.wait(timeout=30) == 130
  assert "stopped" in proc.stdout.read()


def test_a_browser_searches_clicks_and_uploads(served, explorer, motion_files, tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=g-import-not-at-top
  gallery = explorer.gallery()
  browser = _browser()
  wait = WebDriverWait(browser, 120)
  text = lambda element_id: browser.find_element(By.ID, element_id).text
  cards = lambda where="#results": browser.find_elements(By.CSS_SELECTOR, f"{where} .card")
  try:
    browser.get(served)
    wait.until(lambda b: "ready after" in text("status"))
    assert f"{len(gallery.pairs)} motions" in text("status")

    # Keywords, one of them unknown: the page names it and shows the gallery's top hits.
    browser.find_element(By.ID, "query").send_keys("walk, zzzqx")
    browser.find_element(By.ID, "search-button").click()
    wait.until(lambda b: len(cards()) == 8)
    assert "not in the vocabulary, left out: zzzqx" in text("unknown-words")
    expected = gallery.search_keywords(["walk"], 8).hits
    assert [c.get_attribute("data-item-id") for c in cards()] == [h.item_id for h in expected]
    first = cards()[0]
    bar_words = [b.get_attribute("data-word") for b in
                 first.find_elements(By.CSS_SELECTOR, ".matched .bar")]
    assert bar_words == [w for w, _ in expected[0].words]
    assert expected[0].caption in first.text
    canvas = first.find_element(By.CSS_SELECTOR, "canvas")
    wait.until(lambda b: int(canvas.get_attribute("data-frame") or 0) > 2)  # it moves
    assert re.search(r"exact engine [\d.]+ ms", text("timing"))
    browser.save_screenshot(str(tmp_path / "search.png"))
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"

    # A click opens the motion: its captions, its heaviest words, its nearest motions.
    item = expected[0].item_id
    first.click()
    wait.until(lambda b: b.find_element(By.ID, "detail").is_displayed()
               and item in text("detail-title"))
    captions = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#detail-captions li")]
    assert captions == list(gallery.pairs[item].captions)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#detail .description .bar")) >= 5
    wait.until(lambda b: len(cards("#detail .neighbours")) == 6)
    browser.find_element(By.ID, "close-detail").click()

    # An upload of a wrong shape: the command line's message, on the page.
    upload = browser.find_element(By.ID, "motion-file")
    upload.send_keys(str(motion_files["wrong"]))
    browser.find_element(By.ID, "upload-button").click()
    with pytest.raises(MotionFileError) as command_line:
      motion_from_npy(motion_files["wrong"].read_bytes(), "wrong.npy")
    wait.until(lambda b: b.find_element(By.ID, "error").is_displayed())
    assert text("error") == str(command_line.value)

    # A good upload (joint positions) is described and searched; the app is still serving.
    upload.clear()
    upload.send_keys(str(motion_files["joints"]))
    browser.find_element(By.ID, "upload-button").click()
    wait.until(lambda b: b.find_element(By.ID, "uploaded").is_displayed())
    assert "joints.npy" in text("uploaded-title")
    assert not browser.find_element(By.ID, "error").is_displayed()
    features = read_motion_file(motion_files["joints"])
    _, hits = gallery.describe(features, 8)
    wait.until(lambda b: [c.get_attribute("data-item-id") for c in cards()]
               == [h.item_id for h in hits])
  finally:
    browser.quit()
