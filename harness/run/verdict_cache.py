"""Verdicts cached by content, so that `kata` reruns only what changed.

A kata's verdict is kept in .kata-cache/verdicts.json under a key made of everything it depends
on: the file under test, every grading file (the suites, the harness, the reference solutions,
the manifest), the torch version and whose code was under test. Change any of them and the key
changes, so the kata runs again; `kata --fresh` ignores the cache.
"""
import hashlib
import json
from dataclasses import asdict
from functools import lru_cache
from importlib import metadata

from harness import failures, manifest
from harness.grading import integrity
from harness.manifest import Kata
from harness.run.results import KataResult, TestOutcome

CACHE = manifest.ROOT / ".kata-cache" / "verdicts.json"


@lru_cache(maxsize=1)
def _grading_fingerprint() -> str:
    """The grading files and torch, as one hash (computed once per command)."""
    digest = hashlib.sha256()
    for name, value in sorted(integrity.current_hashes().items()):
        digest.update(f"{name} {value}\n".encode())
    try:
        digest.update(metadata.version("torch").encode())
    except metadata.PackageNotFoundError:
        pass
    return digest.hexdigest()


def key(kata: Kata, source) -> str:
    """What a verdict of `kata`, with `source` under test, depends on."""
    digest = hashlib.sha256(_grading_fingerprint().encode())
    digest.update(manifest.shown(source).encode() + b"\n")
    try:
        digest.update(integrity.digest(source).encode())
    except OSError:
        digest.update(b"missing")
    return digest.hexdigest()


def _read() -> dict:
    try:
        return json.loads(CACHE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def load(kata: Kata, source) -> "KataResult | None":
    entry = _read().get(kata.id)
    if not isinstance(entry, dict) or entry.get("key") != key(kata, source):
        return None
    result = KataResult(kata)
    try:
        for test in entry.get("tests", []):
            result.add(TestOutcome(**{**test, "kind": failures.parse(test.get("kind", ""))}))
    except (TypeError, ValueError):  # written by another version of the harness: run the kata again
        return None
    result.protections = list(entry.get("protections", []))
    return result


def store(results: dict, sources: dict) -> None:
    """Keep the verdicts of `results` (kata id -> KataResult), each under its source's key."""
    cache = _read()
    for kata_id, result in results.items():
        cache[kata_id] = {"key": key(result.kata, sources[kata_id]), "tests": [asdict(test) for test in result.tests],
                          "protections": result.protections}
    try:
        CACHE.parent.mkdir(exist_ok=True)
        CACHE.write_text(json.dumps(cache), encoding="utf-8")
    except OSError:  # a read-only checkout: no cache, every verdict is fresh
        pass
