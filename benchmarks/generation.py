"""Generation speed: the reference GPT-2 with and without its KV cache, against Hugging Face.

    python -m benchmarks.generation            # GPT-2 small, batch 1 and 8, 32/128/256 new tokens (tens of minutes)
    python -m benchmarks.generation --quick    # a reduced set, under two minutes
    python -m benchmarks.generation --json results.json

Same seeded weights for every contender (GPT-2 small's sizes: d_model 768, 12 layers, vocabulary
50257), a 16-token prompt, greedy decoding, exactly N new tokens. For each contender it reports
tokens per second and, for the reference with its cache, the share of this machine's
memory-bandwidth roofline: each decode step must read every weight matrix once (the token
embedding excepted: one row per token), so at best it makes batch * bandwidth / weight bytes
tokens per second. Bandwidth is measured here, by summing a tensor much larger than the caches.

Timings are taken in one process, one after the other, after a warm-up, with run-time shape
checks off and a fixed thread count (printed). Compare the ratios; absolute figures move with
the machine and its load.
"""
import argparse
import json
import platform
import time

import jaxtyping
import torch

from harness import Config, parts
from harness.testing.oracles import hf_gpt2

PROMPT_LEN = 16
FULL = [(batch, new) for batch in (1, 8) for new in (32, 128, 256)]
QUICK = [(1, 32), (1, 128), (8, 32)]
MODELS = {"gpt2-small": Config.gpt2_small(), "tiny": Config(d_model=64, n_heads=4, n_layers=2, d_vocab=500, n_ctx=320)}


def memory_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Read bandwidth in bytes per second: the best of `repeats` sums over a large tensor."""
    data = torch.ones(megabytes * 2**20 // 4)
    data.sum()  # touch every page first
    best = min(_seconds(data.sum) for _ in range(repeats))
    return data.numel() * 4 / best


def weight_bytes_per_step(model: torch.nn.Module) -> int:
    """Bytes of weights one decode step reads: every parameter but the embedding tables' unused rows."""
    embeddings = {model.embed.W_E.data_ptr(), model.pos_embed.W_pos.data_ptr()}
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.data_ptr() not in embeddings)


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def contenders(model, hf) -> dict:
    """name -> function(prompt, new_tokens) returning the tokens (prompt included)."""
    def hugging_face(prompt, new):
        return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, use_cache=True, pad_token_id=0)

    return {
        "reference, cache": lambda prompt, new: parts.generate_with_cache(model, prompt, new, do_sample=False),
        "reference, no cache": lambda prompt, new: parts.generate(model, prompt, new, do_sample=False),
        "Hugging Face, cache": hugging_face,
    }


def run(cfg: Config, cases: list[tuple[int, int]], threads: int, report=print) -> dict:
    torch.set_num_threads(threads)
    jaxtyping.config.update("jaxtyping_disable", True)  # the tests check shapes; this measures the model
    hf = hf_gpt2(cfg, 0)
    model = parts.GPT2(cfg).eval()
    parts.load_gpt2_weights(model, hf.state_dict())
    bandwidth = memory_bandwidth()
    step_bytes = weight_bytes_per_step(model)
    runs = contenders(model, hf)
    results = []
    with torch.inference_mode():
        for batch, new in cases:
            prompt = torch.randint(0, cfg.d_vocab, (batch, PROMPT_LEN), generator=torch.Generator().manual_seed(batch))
            outputs = {}
            for name, generate in runs.items():
                generate(prompt, 4)  # warm-up
                start = time.perf_counter()
                outputs[name] = generate(prompt, new)
                seconds = time.perf_counter() - start
                entry = dict(batch=batch, new_tokens=new, contender=name, seconds=round(seconds, 4),
                             tokens_per_s=round(batch * new / seconds, 2))
                if name == "reference, cache":
                    entry["roofline_tokens_per_s"] = round(batch * bandwidth / step_bytes, 2)
                    entry["roofline_share"] = round(entry["tokens_per_s"] / entry["roofline_tokens_per_s"], 3)
                results.append(entry)
                report(entry)
            reference_tokens = outputs["reference, cache"]
            if not all(torch.equal(reference_tokens, tokens) for tokens in outputs.values()):
                report(f"WARNING: the contenders' tokens differ at batch {batch}, {new} tokens")
    return dict(
        machine=dict(platform=platform.platform(), processor=platform.processor(), torch=torch.__version__, threads=threads,
                     read_bandwidth_GB_per_s=round(bandwidth / 1e9, 2)),
        model=dict(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_vocab=cfg.d_vocab,
                   weight_MB_per_step=round(step_bytes / 1e6, 1)),
        prompt_len=PROMPT_LEN,
        results=results,
        ratios=_ratios(results),
    )


def _ratios(results: list[dict]) -> list[dict]:
    speed = {(r["batch"], r["new_tokens"], r["contender"]): r["tokens_per_s"] for r in results}
    return [
        dict(batch=batch, new_tokens=new,
             cache_speedup=round(speed[batch, new, "reference, cache"] / speed[batch, new, "reference, no cache"], 2),
             reference_over_hugging_face=round(speed[batch, new, "reference, cache"] / speed[batch, new, "Hugging Face, cache"], 2))
        for batch, new, contender in speed if contender == "reference, cache"
    ]


def print_table(figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    machine, model = figures["machine"], figures["model"]
    table = Table(title=f"Greedy generation after a {figures['prompt_len']}-token prompt, tokens/s "
                        f"({model['n_layers']} layers, d_model {model['d_model']}; torch {machine['torch']}, {machine['threads']} threads)")
    for column in ("batch", "new tokens", "ref., cache", "ref., no cache", "HF, cache", "cache speedup", "ref. / HF", "roofline"):
        table.add_column(column, justify="right")
    speed = {(r["batch"], r["new_tokens"], r["contender"]): r for r in figures["results"]}
    for ratio in figures["ratios"]:
        key = (ratio["batch"], ratio["new_tokens"])
        table.add_row(str(key[0]), str(key[1]), *(f"{speed[(*key, name)]['tokens_per_s']:.1f}" for name in
                      ("reference, cache", "reference, no cache", "Hugging Face, cache")),
                      f"{ratio['cache_speedup']:.2f}x", f"{ratio['reference_over_hugging_face']:.2f}x",
                      f"{speed[(*key, 'reference, cache')]['roofline_share']:.0%}")
    Console(width=120).print(table)
    print(f"Roofline: {model['weight_MB_per_step']} MB of weights read per decode step, measured read bandwidth "
          f"{machine['read_bandwidth_GB_per_s']} GB/s.")


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generation", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK} (batch, new tokens): under two minutes")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: %(default)s)")
    parser.add_argument("--model", choices=MODELS, default="gpt2-small", help="sizes (tiny: for the benchmark's own test)")
    args = parser.parse_args(argv)
    figures = run(MODELS[args.model], QUICK if args.quick else FULL, args.threads, report=lambda entry: print(entry, flush=True))
    print_table(figures)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(figures, file, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
