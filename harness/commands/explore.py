"""`kata explore`: look inside the GPT-2 built from your katas, in a browser or as images.

    kata explore "Hello world, I am a language model."     write one HTML page, print its path
    kata explore --serve --port 8000                        the same page, live: type a prompt, generate
    kata explore --png runs/explore/png                     the attention patterns as PNG images
    kata explore --pretrained gpt2                          with GPT-2's real weights
    kata explore --detectors --checkpoint harness/models/induction.safetensors
                                                            each head's previous-token, duplicate-token and
                                                            induction scores (--png DIR: as an image too)

The page shows the prompt's tokens, every layer's and head's attention pattern as a heatmap
(hover a cell: which token attends to which, and the weight) and the top next-token
probabilities at each position. It is one self-contained file: CSS, JavaScript and the data
are inline, nothing is fetched, so it works offline and can be mailed. The model is the one
`kata demo` builds (your passing katas, the reference for the rest; the same weight options),
and the activations come from harness.lens. With --serve the page also generates through
your cached generation (parts.generate_with_cache, parts.beam_search_with_cache): greedy,
sampling (temperature, top-k, top-p, the penalties) or beam search, with tokens per second.
The server is Python's http.server, on 127.0.0.1 only.
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from harness.commands import demo

TEMPLATE = Path(__file__).with_name("explore.html")
DEFAULT_PROMPT = "Hello world, I am a language model."
SCALE = 10_000  # attention weights travel as integers in ten-thousandths: a compact page


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", default=DEFAULT_PROMPT, help="the prompt (default: %(default)r)")
    parser.add_argument("--out", type=Path, default=Path("runs/explore/index.html"), help="the page to write (default %(default)s)")
    parser.add_argument("--top", type=int, default=5, help="next tokens shown per position (default %(default)s)")
    parser.add_argument("--png", type=Path, metavar="DIR", help="also write each layer's attention patterns as a PNG image in DIR")
    parser.add_argument("--serve", action="store_true", help="serve the page live on 127.0.0.1 (type a prompt, generate)")
    parser.add_argument("--port", type=int, default=8000, help="the port for --serve (default %(default)s; 0 picks a free one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights when no others are given")
    parser.add_argument("--detectors", action="store_true",
                        help="score every head as a previous-token, duplicate-token and induction head (katas/interp), "
                        "on repeated random tokens; try it on the trained harness/models/induction.safetensors")
    demo.add_model_options(parser)


# ---------------------------------------------------------------- what the page shows


def token_strings(ids: list[int]) -> list[str]:
    from harness.text import gpt2_tokenizer

    tokenizer = gpt2_tokenizer()
    return [tokenizer.decode([i]) for i in ids]


@torch.no_grad()
def analyse(model, prompt: str, top: int = 5) -> dict:
    """The prompt's tokens, every head's attention pattern and the top next tokens at each position."""
    from harness import lens, text

    tokens = text.encode(prompt)[:, : model.cfg.n_ctx]
    if tokens.shape[1] == 0:
        raise ValueError("the prompt has no tokens")
    logits, cache = lens.run_with_cache(model, tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    patterns = torch.stack([cache["pattern", layer][0] for layer in range(model.cfg.n_layers)])  # (layer, head, query, key)
    logits = logits[0].float()
    probs, ids = logits.softmax(dim=-1).topk(min(top, model.cfg.d_vocab), dim=-1)
    ids_list = tokens[0].tolist()
    return {
        "prompt": prompt,
        "ids": ids_list,
        "tokens": token_strings(ids_list),
        "n_layers": model.cfg.n_layers,
        "n_heads": model.cfg.n_heads,
        "scale": SCALE,
        "patterns": (patterns * SCALE).round().int().tolist(),
        "top": [
            [{"token": token, "id": i, "prob": round(p, 6), "logit": round(logits[pos, i].item(), 4)}
             for token, i, p in zip(token_strings(row_ids), row_ids, row_probs)]
            for pos, (row_ids, row_probs) in enumerate(zip(ids.tolist(), probs.tolist()))
        ],
    }


def render(data: dict, about: dict, serve: bool = False) -> str:
    """The page: the template with the data inline (a "</" inside a string cannot close the script)."""
    payload = json.dumps({"analysis": data, "about": about, "serve": serve}, separators=(",", ":"), ensure_ascii=False)
    return TEMPLATE.read_text(encoding="utf-8").replace("__DATA__", payload.replace("</", "<\\/"))


def write_page(data: dict, about: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, about), encoding="utf-8")
    return path


def write_pngs(data: dict, folder: Path) -> list[Path]:
    """One image per layer, a heatmap per head, for people without a browser."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    from matplotlib import pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokens, n_heads = data["tokens"], data["n_heads"]
    labels = len(tokens) <= 24
    columns = min(n_heads, 4)
    rows = -(-n_heads // columns)
    paths = []
    for layer, heads in enumerate(data["patterns"]):
        figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False, dpi=100)
        for head, ax in enumerate(axes.flat):
            if head >= n_heads:
                ax.axis("off")
                continue
            ax.imshow((torch.tensor(heads[head]) / data["scale"]).numpy(), cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"layer {layer} head {head}", fontsize=9)
            ax.set_xlabel("key (attended to)", fontsize=7)
            ax.set_ylabel("query (attending)", fontsize=7)
            if labels:
                shown = [repr(token)[1:-1] for token in tokens]
                ax.set_xticks(range(len(tokens)), shown, rotation=90, fontsize=6)
                ax.set_yticks(range(len(tokens)), shown, fontsize=6)
        figure.tight_layout()
        paths.append(folder / f"layer_{layer:02d}.png")
        figure.savefig(paths[-1])
        plt.close(figure)
    return paths


# ---------------------------------------------------------------- head detectors

DETECTORS = ("previous-token", "duplicate-token", "induction")


@torch.no_grad()
def detector_scores(model, batch: int = 8, seed: int = 0) -> torch.Tensor:
    """(detector, layer, head) scores on `batch` random sequences repeated twice, by parts.detector_scores
    (your head-detectors kata once it passes, the reference until then)."""
    from harness import induction, parts

    half = min(model.cfg.n_ctx // 2, 32)
    return parts.detector_scores(model, induction.repeated_tokens(batch, seed, half, model.cfg.d_vocab)).float().cpu()


def print_detectors(scores: torch.Tensor, threshold: float = 0.4) -> None:
    from rich.table import Table

    from harness import parts
    from harness.commands.status import console

    for name, table_scores in zip(DETECTORS, scores):
        table = Table(title=f"{name} scores (mean attention to the target; above {threshold}: "
                      f"{', '.join(parts.heads_above(table_scores, threshold)) or 'none'})", title_justify="left")
        table.add_column("layer")
        for head in range(scores.shape[2]):
            table.add_column(f"head {head}", justify="right")
        for layer, row in enumerate(table_scores.tolist()):
            table.add_row(str(layer), *(f"[bold]{value:.2f}[/]" if value > threshold else f"{value:.2f}" for value in row))
        console.print(table)


def write_detector_png(scores: torch.Tensor, path: Path, title: str = "") -> Path:
    """The three detectors side by side, a layer x head heatmap each (0: no attention to the target, 1: all of it)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n_layers, n_heads = scores.shape[1:]
    figure, axes = plt.subplots(1, 3, figsize=(3 + 1.1 * n_heads * 3, 1.2 + 0.6 * n_layers), dpi=100, squeeze=False)
    for ax, name, table in zip(axes[0], DETECTORS, scores):
        image = ax.imshow(table.numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_title(f"{name} score", fontsize=9)
        ax.set_xlabel("head", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        ax.set_xticks(range(n_heads))
        ax.set_yticks(range(n_layers))
        for layer, row in enumerate(table.tolist()):
            for head, value in enumerate(row):
                ax.text(head, layer, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value > 0.5 else "black")
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="mean attention to the target")
    if title:
        figure.suptitle(title, fontsize=9, y=1.06)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path


# ---------------------------------------------------------------- generation, for --serve


def generate(model, request: dict) -> dict:
    """A continuation of request["prompt"] through your cached generation, timed as `kata demo` times it."""
    from harness import parts, text

    prompt = text.encode(request.get("prompt", ""))[:, -model.cfg.n_ctx + 1:]
    if prompt.shape[1] == 0:
        raise ValueError("type a prompt first")
    new = max(0, min(int(request.get("max_new_tokens", 20)), model.cfg.n_ctx - prompt.shape[1]))
    method = request.get("method", "greedy")
    seed = int(request.get("seed", 0))
    if method == "beam":
        options = {"num_beams": int(request.get("num_beams", 4)), "length_penalty": float(request.get("length_penalty", 1.0)),
                   "no_repeat_ngram_size": int(request.get("no_repeat_ngram_size", 0))}
        tokens, speed = demo.timed(best_beam, model, prompt, new, options, seed)
        used = "beam_search_with_cache"
    else:
        options = {"do_sample": method == "sample", "repetition_penalty": float(request.get("repetition_penalty", 1.0)),
                   "frequency_penalty": float(request.get("frequency_penalty", 0.0))}
        if method == "sample":
            options |= {"temperature": float(request.get("temperature", 1.0)), "top_k": int(request.get("top_k", 0)),
                        "top_p": float(request.get("top_p", 1.0))}
        tokens, speed = demo.timed(parts.generate_with_cache, model, prompt, new, options, seed)
        used = "generate_with_cache"
    continuation = tokens[0, prompt.shape[1]:]
    continuation = continuation[continuation != text.END_OF_TEXT]
    return {"prompt": text.decode(prompt[0]), "continuation": text.decode(continuation), "ids": continuation.tolist(),
            "new_tokens": len(continuation),
            "tokens_per_second": round(speed, 1), "function": used, "options": options}


def best_beam(model, prompt, max_new_tokens: int, *, eos_token_id: int, **options):
    """parts.beam_search_with_cache's best sequence, shaped as generate's result (1, total_len)."""
    from harness import parts

    sequences, _ = parts.beam_search_with_cache(model, prompt, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id, **options)
    return sequences[:1]


def make_server(model, about: dict, first_prompt: str, port: int, top: int = 5) -> ThreadingHTTPServer:
    """The live page on 127.0.0.1:port: GET / is the page, POST /api/analyse and /api/generate answer JSON."""
    lock = threading.Lock()  # one model, one request at a time
    with lock:
        first = analyse(model, first_prompt, top)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/favicon.ico":
                return self.reply(204, "image/x-icon", b"")
            if self.path not in ("/", "/index.html"):
                return self.reply(404, "text/plain", b"not found")
            self.reply(200, "text/html; charset=utf-8", render(first, about, serve=True).encode())

        def do_POST(self):
            actions = {"/api/analyse": lambda request: analyse(model, request.get("prompt", ""), top),
                       "/api/generate": lambda request: generate(model, request)}
            if self.path not in actions:
                return self.reply(404, "text/plain", b"not found")
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with lock:
                    answer = actions[self.path](request)
            except (ValueError, NotImplementedError) as error:
                answer = {"error": f"{type(error).__name__}: {error}"}
            self.reply(200, "application/json", json.dumps(answer, ensure_ascii=False).encode())

        def reply(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet: the terminal shows what matters
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


# ---------------------------------------------------------------- the command


def describe(model, yours: set, where: str) -> dict:
    from harness import manifest

    katas = manifest.katas()
    return {"n_layers": model.cfg.n_layers, "n_heads": model.cfg.n_heads, "d_model": model.cfg.d_model, "weights": where,
            "yours": [kata.title for kata in katas if kata.id in yours], "reference": [kata.title for kata in katas if kata.id not in yours]}


def print_next_tokens(data: dict) -> None:
    """The top next tokens after the whole prompt, in the terminal: numbers to compare."""
    from rich.table import Table

    from harness.commands.status import console

    table = Table(title=f"Next token after {data['prompt']!r}", title_justify="left")
    for column in ("#", "token", "id", "probability", "logit"):
        table.add_column(column, justify="left" if column == "token" else "right")
    for rank, choice in enumerate(data["top"][-1], start=1):
        table.add_row(str(rank), repr(choice["token"]), str(choice["id"]), f"{choice['prob']:.4f}", f"{choice['logit']:.3f}")
    console.print(table)


def run(args: argparse.Namespace) -> int:
    from harness.commands.status import console

    try:
        model, yours, where = demo.learner_model(args)
    except demo.PretrainedUnavailable as error:
        console.print(str(error), style="red", markup=False)
        return 1
    about = describe(model, yours, where)
    if args.detectors:
        scores = detector_scores(model)
        print_detectors(scores)
        if args.png:
            console.print(f"wrote {write_detector_png(scores, Path(args.png) / 'detectors.png', where)}")
        return 0
    data = analyse(model, args.prompt, args.top)
    print_next_tokens(data)
    if args.png:
        paths = write_pngs(data, args.png)
        console.print(f"wrote {len(paths)} images in {args.png}")
    if args.serve:
        server = make_server(model, about, args.prompt, args.port, args.top)
        console.print(f"Serving on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    path = write_page(data, about, args.out)
    console.print(f"Wrote the page ({path.stat().st_size / 1024:.0f} KiB, works offline); open it in a browser:")
    print(path)  # the last line is the path alone, for scripts
    return 0
