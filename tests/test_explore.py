"""`kata explore` and `kata demo --pretrained`: the page's data, the PNGs, generation for --serve, GPT-2
weights from a save_pretrained folder, the advice when offline; then the page and the live server in
a real headless Chromium (skipped, with the reason, where none is installed; CI installs one)."""
import json
import re
import shutil
import threading

import pytest
import torch

from harness import lens, parts, text
from harness.__main__ import main
from harness.checkpoint import save_checkpoint
from harness.commands import demo, explore
from harness.config import Config
from harness.testing.oracles import hf_gpt2, reference_gpt2

CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=50257, n_ctx=48)
PROMPT = "Hello world, I am a language model."


@pytest.fixture(scope="module")
def model():
    return reference_gpt2(CFG, 7)


@pytest.fixture(scope="module")
def data(model):
    return explore.analyse(model, PROMPT, top=3)


@torch.no_grad()
def test_the_page_data_is_the_model_s(model, data):
    tokens = text.encode(PROMPT)
    assert data["ids"] == tokens[0].tolist() and "".join(data["tokens"]) == PROMPT
    logits, cache = lens.run_with_cache(model, tokens)
    for layer in range(CFG.n_layers):
        shown = torch.tensor(data["patterns"][layer]) / data["scale"]
        torch.testing.assert_close(shown, cache["pattern", layer][0], atol=0.5 / data["scale"], rtol=0)
    probs = logits[0].softmax(-1)
    for pos, choices in enumerate(data["top"]):
        assert [choice["id"] for choice in choices] == probs[pos].topk(3).indices.tolist()
        for choice in choices:
            assert choice["prob"] == pytest.approx(probs[pos, choice["id"]].item(), abs=1e-6)
            assert choice["logit"] == pytest.approx(logits[0, pos, choice["id"]].item(), abs=1e-4)


def test_the_page_is_self_contained_and_its_data_cannot_break_out(model):
    tricky = explore.analyse(model, 'a </script><script>alert(1)</script> "quotes"', top=2)
    page = explore.render(tricky, {"n_layers": 2, "n_heads": 2, "d_model": 16, "weights": "w", "yours": [], "reference": []})
    assert not re.search(r"""(src|href)\s*=|@import|url\(|<link|https?://""", page), "the page must fetch nothing"
    payload = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert json.loads(payload)["analysis"]["prompt"] == tricky["prompt"]


def test_pngs_one_per_layer(data, tmp_path):
    paths = explore.write_pngs(data, tmp_path)
    assert [path.name for path in paths] == ["layer_00.png", "layer_01.png"]
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in paths)


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    return save_checkpoint(model, tmp_path_factory.mktemp("checkpoint") / "model.safetensors")


def test_kata_explore_writes_the_page_and_prints_its_path(checkpoint, tmp_path, capsys):
    out = tmp_path / "page" / "index.html"
    assert main(["explore", PROMPT, "--reference", "--checkpoint", str(checkpoint), "--out", str(out), "--png", str(tmp_path / "png")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    assert "Inside your GPT-2" in out.read_text() and len(list((tmp_path / "png").glob("*.png"))) == CFG.n_layers


GENERATIONS = [
    {"method": "greedy", "max_new_tokens": 8},
    {"method": "greedy", "max_new_tokens": 8, "repetition_penalty": 1.5, "frequency_penalty": 0.5},
    {"method": "sample", "max_new_tokens": 8, "seed": 3, "temperature": 0.8, "top_k": 50, "top_p": 0.9},
]


def expected_continuation(model, request: dict) -> list[int]:
    """What the uncached generation loop (parts.generate) gives for the same options."""
    options = {key: request[key] for key in ("repetition_penalty", "frequency_penalty", "temperature", "top_k", "top_p") if key in request}
    torch.manual_seed(request.get("seed", 0))
    prompt = text.encode(request["prompt"])
    tokens = parts.generate(model, prompt, request["max_new_tokens"], eos_token_id=text.END_OF_TEXT,
                            do_sample=request["method"] == "sample", **options)
    new = tokens[0, prompt.shape[1]:]
    return new[new != text.END_OF_TEXT].tolist()


@pytest.mark.parametrize("request_", GENERATIONS)
def test_generation_for_serve_is_the_generation_loop_s(model, request_):
    request_ = {"prompt": PROMPT, **request_}
    answer = explore.generate(model, request_)
    assert answer["ids"] == expected_continuation(model, request_) and answer["function"] == "generate_with_cache"
    assert answer["tokens_per_second"] > 0 and answer["continuation"] == text.decode(torch.tensor(answer["ids"]))


def test_beam_search_for_serve_is_beam_search_s(model):
    answer = explore.generate(model, {"prompt": PROMPT, "method": "beam", "num_beams": 3, "max_new_tokens": 6})
    assert text.encode(PROMPT + answer["continuation"])[0].tolist() == text.encode(text.beam_search_text(
        model, PROMPT, num_beams=3, max_new_tokens=6)[0])[0].tolist()


# ---------------------------------------------------------------- GPT-2's weights through transformers


@pytest.fixture(scope="module")
def pretrained_folder(tmp_path_factory):
    """A small seeded GPT2LMHeadModel written by save_pretrained: what `from_pretrained("gpt2")` gives, smaller."""
    folder = tmp_path_factory.mktemp("pretrained")
    hf_gpt2(CFG, 11).save_pretrained(folder)
    return folder


@torch.no_grad()
def test_pretrained_weights_load_through_load_gpt2_weights(pretrained_folder, monkeypatch):
    calls = []
    real = parts.load_gpt2_weights
    monkeypatch.setattr(parts, "load_gpt2_weights", lambda model, state: calls.append(1) or real(model, state), raising=False)
    model = demo.load_pretrained(str(pretrained_folder))
    assert calls == [1] and model.cfg == CFG
    tokens = text.encode(PROMPT)
    torch.testing.assert_close(model(tokens), hf_gpt2(CFG, 11)(tokens).logits, atol=1e-4, rtol=1e-4)


def test_kata_demo_and_explore_take_a_save_pretrained_folder(pretrained_folder, tmp_path, capsys):
    assert main(["demo", PROMPT, "--pretrained", str(pretrained_folder), "--reference", "--tokens", "3"]) == 0
    assert "GPT-2's pretrained weights" in capsys.readouterr().out
    out = tmp_path / "index.html"
    assert main(["explore", PROMPT, "--pretrained", str(pretrained_folder), "--reference", "--out", str(out)]) == 0
    page = json.loads(re.search(r'type="application/json">(.*?)</script>', out.read_text(), re.S).group(1))
    logits = hf_gpt2(CFG, 11)(text.encode(PROMPT)).logits[0, -1]
    assert page["analysis"]["top"][-1][0]["id"] == logits.argmax().item()
    assert page["analysis"]["top"][-1][0]["logit"] == pytest.approx(logits.max().item(), abs=1e-4)


def test_offline_without_the_weights_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["demo", "--pretrained", "gpt2-not-in-any-cache", "--reference"]) == 1
    said = capsys.readouterr().out
    assert "Could not load 'gpt2-not-in-any-cache'" in said and "save_pretrained" in said and "--pretrained" in said


# ---------------------------------------------------------------- in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]


def why_no_browser() -> "str | None":
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not CHROMIUM or not CHROMEDRIVER:
        return "no chromium and chromedriver on PATH (.ci/run installs them: apt-get install chromium chromium-driver)"
    return None


def browser_test(test):
    """A test that drives the real browser: marked `browser` (make check), skipped where there is none."""
    return pytest.mark.browser(pytest.mark.skipif(why_no_browser() is not None, reason=str(why_no_browser()))(test))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    yield driver
    driver.quit()


def open_page(browser, url: str, allowed: str) -> list[str]:
    """Load url with every other network request blocked; the requests the page made that leave `allowed`."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"] if allowed == "file:" else []})
    browser.get("about:blank")
    browser.get_log("performance")  # forget what came before
    browser.get(url)
    WebDriverWait(browser, 20).until(lambda driver: driver.find_element("tag name", "body").get_attribute("data-ready") == "yes")
    messages = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = [m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"]
    return [u for u in urls if not u.startswith((allowed, "data:", "about:", "chrome:", "devtools:"))]


def hover_cell(browser, canvas, query: int, key: int) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains

    cell, size = int(canvas.get_attribute("data-cell")), canvas.size
    ActionChains(browser).move_to_element_with_offset(
        canvas, int((key + 0.5) * cell - size["width"] / 2), int((query + 0.5) * cell - size["height"] / 2)).perform()
    tip = browser.find_element("id", "tooltip")
    return {"text": tip.text, **{name: tip.get_attribute(f"data-{name}") for name in ("layer", "head", "query", "key", "weight")}}


@browser_test
@torch.no_grad()
def test_the_page_in_a_browser(browser, model, data, tmp_path):
    path = explore.write_page(data, explore.describe(model, set(), "seeded test weights"), tmp_path / "index.html")
    assert open_page(browser, path.as_uri(), "file:") == [], "the page fetched something"
    canvases = browser.find_elements("css selector", "canvas.small")
    assert len(canvases) == CFG.n_layers * CFG.n_heads
    _, cache = lens.run_with_cache(model, text.encode(PROMPT))
    tokens = data["tokens"]
    for canvas, (query, key) in zip(canvases, [(5, 2), (8, 8), (3, 0), (8, 1)]):
        layer, head = int(canvas.get_attribute("data-layer")), int(canvas.get_attribute("data-head"))
        seen = hover_cell(browser, canvas, query, key)
        assert (seen["layer"], seen["head"], seen["query"], seen["key"]) == tuple(map(str, (layer, head, query, key)))
        assert float(seen["weight"]) == pytest.approx(cache["pattern", layer][0, head, query, key].item(), abs=1.5e-4)
        assert f"{query} {json.dumps(tokens[query])} attends to {key} {json.dumps(tokens[key])}" in seen["text"]
    rows = browser.find_elements("css selector", "#top tr[data-pos]")
    assert len(rows) == len(tokens)
    logits = model(text.encode(PROMPT))[0]
    for row in rows:
        pos = int(row.get_attribute("data-pos"))
        cells = row.find_elements("css selector", "td[data-id]")
        ids = [int(cell.get_attribute("data-id")) for cell in cells]
        assert ids == logits[pos].topk(3).indices.tolist()
        for cell, i in zip(cells, ids):
            assert float(cell.get_attribute("data-prob")) == pytest.approx(logits[pos].softmax(-1)[i].item(), abs=1e-6)
            shown = re.search(r"([0-9.]+)% ", cell.text)  # two significant digits: a small probability is not "0.0%"
            assert shown and float(shown.group(1)) == pytest.approx(100 * float(cell.get_attribute("data-prob")), rel=0.05), cell.text
    assert browser.find_element("id", "legend").is_displayed(), "the colour scale shows before any head is enlarged"
    canvases[3].click()
    focused = browser.find_element("id", "focused")
    assert focused.get_attribute("data-head") == "1"
    check_the_enlarged_map_is_explained(browser, focused, tokens)
    browser.save_screenshot(str(tmp_path / "page.png"))


def check_the_enlarged_map_is_explained(browser, focused, tokens: list[str]) -> None:
    """Titled axes with a token beside each row and under each column, and beside the map a colour scale that is
    the heatmap's own color() from 0 to 1, and the masked grey."""
    titles = {kind: browser.find_element("css selector", f"#focus .{kind}-axis") for kind in ("query", "key")}
    assert all(title.is_displayed() for title in titles.values())
    assert "query (row)" in titles["query"].text and "key (column)" in titles["key"].text
    box, cell = focused.rect, int(focused.get_attribute("data-cell"))
    rows = browser.find_elements("css selector", "#focus .rows .label")
    keys = browser.find_elements("css selector", "#focus .keys .label")
    expected = [f"{i} {json.dumps(token)}" for i, token in enumerate(tokens)]
    assert [label.text for label in rows] == expected and [label.text for label in keys] == expected
    for i, (row, key) in enumerate(zip(rows, keys)):
        assert row.is_displayed() and key.is_displayed()
        assert row.rect["x"] + row.rect["width"] <= box["x"] and key.rect["y"] >= box["y"] + box["height"] - 1
        assert box["y"] + i * cell < row.rect["y"] + row.rect["height"] / 2 < box["y"] + (i + 1) * cell + 2
        assert box["x"] + i * cell < key.rect["x"] + key.rect["width"] / 2 < box["x"] + (i + 1) * cell + 2

    legend = browser.find_element("id", "legend")
    assert legend.is_displayed() and legend.rect["x"] >= box["x"] + box["width"], "the scale is beside the map"
    assert "attention weight" in legend.text and "masked" in legend.text and "cannot attend to a later key" in legend.text
    ticks = legend.find_elements("css selector", ".ticks span")
    assert [tick.text for tick in ticks] == ["1", "0.75", "0.5", "0.25", "0"] and all(tick.is_displayed() for tick in ticks)
    seen = browser.execute_script("""
        const pixel = (canvas, x, y) => `rgb(${canvas.getContext("2d").getImageData(x, y, 1, 1).data.slice(0, 3).join(",")})`;
        const scale = document.getElementById("scale"), focused = document.getElementById("focused"), last = scale.height - 1;
        return {scale: [0, 40, 100, last].map(y => [pixel(scale, 0, y), color(1 - y / last)]),
                masked: [pixel(focused, focused.width - 1, 0), getComputedStyle(document.querySelector("#masked .swatch")).backgroundColor]};
    """)
    assert seen["scale"][0][1] == "rgb(31,95,191)" and seen["scale"][-1][1] == "rgb(255,255,255)"
    assert all(drawn == wanted for drawn, wanted in seen["scale"]), seen["scale"]
    assert seen["masked"][0] == seen["masked"][1].replace(" ", ""), "the swatch is the grey of the cells above the diagonal"


@pytest.fixture
def server(model):
    server = explore.make_server(model, explore.describe(model, set(), "seeded test weights"), PROMPT, port=0, top=3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@browser_test
def test_the_live_page_generates_what_the_generation_loop_does(browser, model, server):
    from selenium.webdriver.support.ui import WebDriverWait

    assert open_page(browser, server, server.rstrip("/")) == [], "the page fetched something from elsewhere"
    prompt = "The cat sat on"
    box = browser.find_element("id", "prompt")
    box.clear()
    box.send_keys(prompt)
    browser.find_element("id", "analyse").click()
    WebDriverWait(browser, 20).until(lambda driver: len(driver.find_elements("css selector", "#tokens .tok")) == len(text.encode(prompt)[0]))
    for request in GENERATIONS:
        browser.find_element("css selector", f"input[name=method][value={request['method']}]").click()
        for name in ("max_new_tokens", "seed", "temperature", "top_k", "top_p", "repetition_penalty", "frequency_penalty"):
            field = browser.find_element("id", name)
            browser.execute_script("arguments[0].value = arguments[1]", field, str(request.get(name, field.get_attribute("defaultValue"))))
        browser.execute_script("document.getElementById('output').removeAttribute('data-ids')")
        browser.find_element("id", "generate").click()
        output = WebDriverWait(browser, 30).until(lambda driver: driver.find_element("id", "output").get_attribute("data-ids") and
                                                  driver.find_element("id", "output"))
        ids = json.loads(output.get_attribute("data-ids"))
        assert ids == expected_continuation(model, {"prompt": prompt, **request}), request
        assert output.text == prompt + text.decode(torch.tensor(ids))
        assert "tokens/s" in browser.find_element("id", "speed").text
    browser.find_element("css selector", "input[name=method][value=beam]").click()
    browser.execute_script("document.getElementById('num_beams').value = '3'; document.getElementById('max_new_tokens').value = '6';"
                           "document.getElementById('output').removeAttribute('data-ids')")
    browser.find_element("id", "generate").click()
    output = WebDriverWait(browser, 30).until(lambda driver: driver.find_element("id", "output").get_attribute("data-ids") and
                                              driver.find_element("id", "output"))
    sequences, _ = parts.beam_search(model, text.encode(prompt), num_beams=3, max_new_tokens=6, eos_token_id=text.END_OF_TEXT)
    best = sequences[0, len(text.encode(prompt)[0]):]
    assert json.loads(output.get_attribute("data-ids")) == best[best != text.END_OF_TEXT].tolist()
    assert "beam_search_with_cache" in browser.find_element("id", "speed").text
