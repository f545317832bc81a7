"""Attacks on the grader: a learner who wants points without doing the work.

Each tests/attacks/attack_*.py is a kata file written by such a learner. It is graded in place of
one cheap kata by the installed CLI, as a subprocess (`python -m harness grade --learner L --out O
--kata ATTACKED --kata OTHER --budget B`, from the grader's checkout, as CI runs it), and then:

1. it scores 0 points: in the grader's stdout (exactly one "Score:" line) and in every report
   (results.json, classroom.json and .b64, gradescope/results.json, junit.xml, summary.md), read
   as soon as the grader exits and again 2 s later (a detached process must not rewrite them);
2. no process it started is left: none with the attacks' marker in its command line, and no
   orphan of the grade (this test makes itself the grade's child subreaper, so every process the
   grade leaves behind, setsid or not, becomes its child);
3. no file of the grader changed: its checkout, its virtual environment (site-packages: no new
   .pth or module), the user site and the system site-packages; no kata-attack-canary-* appeared
   in /tmp, /var/tmp, /dev/shm or $HOME; a fake token in the grader's environment reaches no
   report; the files named by GITHUB_OUTPUT and GITHUB_STEP_SUMMARY stay empty; no connection
   reaches the port this test listens on; the grade ends within its --budget;
4. an honest learner graded right after (the reference in one kata, a stub in another) gets
   exactly their true score.

A failure lists everything that was forged, and how. Whatever an attack managed is undone
afterwards (the grader's files restored, new files deleted, processes killed), so one successful
attack does not spoil the next test. Linux only: it reads /proc.
"""
import base64
import ctypes
import json
import os
import re
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from checkouts import learner_with, reference_of

from harness import manifest

pytestmark = [pytest.mark.slow, pytest.mark.attack, pytest.mark.subprocess,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

ROOT = manifest.ROOT
ATTACKS = Path(__file__).parent / "attacks"
# Every process an attack starts carries the marker in its command line, and every file it writes
# outside its scratch folder is named kata-attack-canary-*; both get this session's token when an
# attack is put in place, so that runs of these tests elsewhere on the machine are left alone.
TOKEN = uuid.uuid4().hex[:12]
MARKER = f"kata-attack-marker-{TOKEN}"
CANARY = f"kata-attack-canary-{TOKEN}"
SECRET = "ghs_kataAttackFakeToken0123456789abcdef"  # in the grader's environment: it must reach no report
PORT_PLACEHOLDER = "__KATA_ATTACK_PORT__"
CANARY_FOLDERS = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path.home()]
NOT_THE_GRADERS = {".git", ".hypothesis", ".pytest_cache", "__pycache__", ".benchmarks", "runs", "reports"}
ATTACKED, OTHER = "attention.causal_mask", "mlp.gelu_new"  # cheap katas: a grade of both takes ~10 s
BUDGET = 180  # --budget of every grade: generous, so that an honest verdict never depends on the machine's load
SLACK = 30  # seconds a grade may take past its budget (starting Python, writing the reports)
SETTLE = 2.0  # seconds after the grader exits before the reports are read again


@dataclass(frozen=True)
class Attack:
    file: str
    how: str  # what it forges and how, for the failure message
    kata: str = ATTACKED  # the kata whose file it replaces
    budget: int = BUDGET


ALL = [
    Attack("attack_pytest_hook.py", "registers a pytest_runtest_makereport wrapper (Config found through gc) that marks every test passed"),
    Attack("attack_stream_writer.py", "wraps harness.checker.events's events writer so that every test event says passed"),
    Attack("attack_events_file.py", "sends forged 'passed' events to the events file or socket named in its environment, then os._exit(0)"),
    Attack("attack_inherited_fds.py", "writes forged 'passed' events and results down every inherited file descriptor, then os._exit(0)"),
    Attack("attack_staged_tests.py", "overwrites the staged test files (its cwd and its parent's) with passing tests, then crashes"),
    Attack("attack_testing_noops.py", "replaces harness.testing's check_* functions (and the suites' copies) with no-ops", kata=OTHER),
    Attack("attack_loader_reference.py", "patches harness.loader so that the kata under test is the reference"),
    Attack("attack_reexec_reference.py", "replaces the test process (same pid, same events file) with the same pytest plus --reference"),
    Attack("attack_daemon.py", "a double-forked setsid daemon rewrites the reports after the grader exits; leaks the grader's environment"),
    Attack("attack_grader_stdout.py", "writes a forged score to the grader's stdout/stderr, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY"),
    Attack("attack_pth.py", "drops a .pth and a plugin into the grader's site-packages and the user site, then crashes"),
    Attack("attack_grader_checkout.py", "rewrites a suite in the grader's own checkout (and any recorded hashes)"),
    Attack("attack_write_outside.py", "writes canary files in /tmp, /var/tmp, /dev/shm, $HOME and the grader's checkout"),
    Attack("attack_import_reference.py", "from reference.attention.causal_mask import apply_causal_mask"),
    Attack("attack_parts_self.py", "calls its own symbol through harness.parts (a reference solution)"),
    Attack("attack_testing_reference.py", "calls harness.testing.reference('attention.causal_mask')"),
    Attack("attack_read_reference.py", "reads reference/attention/causal_mask.py with open() and exec's it"),
    Attack("attack_agreeable_result.py", "returns a Tensor subclass that becomes whatever it is compared with (== always True; "
                                         "__reduce_ex__ runs code when unpickled)"),
    Attack("attack_loop_forever.py", "ignores and blocks SIGALRM/SIGTERM/SIGINT/SIGHUP and loops forever, with a setsid child doing the same",
           budget=60),
    Attack("attack_many_children.py", "starts 50 children that ignore SIGTERM and sleep forever, half of them in their own session"),
    Attack("attack_network.py", "connects to a port on this machine's loopback"),
    Attack("attack_kill_grader.py", "SIGKILLs the grader (its ancestor with --out), so that no report is written"),
    Attack("attack_filesystem_walk.py", "walks the whole filesystem it can see (git objects and packs inflated) for the "
           "kata's reference solution and runs it"),
    Attack("attack_unaudited_calls.py", "starts a child with _posixsubprocess.fork_exec and kills every ancestor with "
           "os.pidfd_open + signal.pidfd_send_signal: calls that raise no audit event"),
    Attack("attack_report_markup.py", "raises an exception named <h2>...</h2> whose message holds an image, a link, a table row, "
           "ESC/NUL/VT and a lone surrogate, to show a fake score in the Markdown reports or break the XML one"),
]


def test_every_attack_file_is_in_the_table():
    assert sorted(path.name for path in ATTACKS.glob("attack_*.py")) == sorted(attack.file for attack in ALL)


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> Path:
    """A learner who did the work for one kata (the reference copied in) and not for the other."""
    return learner_with(tmp_path_factory.mktemp("honest"), reference_of([ATTACKED]))


@pytest.mark.parametrize("attack", ALL, ids=[attack.file.removesuffix(".py") for attack in ALL])
def test_an_attack_scores_nothing_and_leaves_nothing(attack, honest, tmp_path):
    other = OTHER if attack.kata != OTHER else ATTACKED

    def checkout(port: int) -> Path:
        return learner_with(tmp_path / "attack", {attack.kata: attack_source(attack.file, port)})

    problems = run_attack(checkout, [attack.kata, other], honest, tmp_path, budget=attack.budget)
    assert not problems, f"{attack.file} ({attack.how}) fooled the grader:\n- " + "\n- ".join(problems)


def test_a_kata_folder_symlinked_to_reference_scores_nothing(honest, tmp_path):
    def checkout(port: int) -> Path:
        learner = learner_with(tmp_path / "attack", {})
        folder = learner / "katas" / "attention"
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        folder.symlink_to(ROOT / "reference" / "attention", target_is_directory=True)
        return learner

    problems = run_attack(checkout, [ATTACKED, OTHER], honest, tmp_path)
    assert not problems, "katas/attention symlinked to the grader's reference/attention fooled the grader:\n- " + "\n- ".join(problems)


def attack_source(file: str, port: int) -> str:
    """The attack's file with this session's marker, canary names and listening port."""
    source = (ATTACKS / file).read_text()
    return source.replace("kata-attack-marker", MARKER).replace("kata-attack-canary", CANARY).replace(PORT_PLACEHOLDER, str(port))


# ---------------------------------------------------------------- one attack, every check


def run_attack(checkout, katas: list[str], honest: Path, tmp_path: Path, *, budget: int = BUDGET) -> list[str]:
    """Grade the attack's checkout, then the honest one; what went wrong, in words (empty: nothing)."""
    problems: list[str] = []
    _remove_canaries()
    before = Snapshot.take()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    children_before = _children_of_this_process()
    _set_subreaper(True)
    try:
        learner = checkout(listener.getsockname()[1])
        attacked = grade(learner, tmp_path / "attack-out", katas, tmp_path / "attack-scratch", budget)
        problems += attacked.problems(expected=0, budget=budget)
        time.sleep(max(0.0, attacked.ended + SETTLE - time.monotonic()))
        later = read_reports(tmp_path / "attack-out")
        rewritten = sorted(name for name in attacked.reports.keys() | later.keys() if attacked.reports.get(name) != later.get(name))
        if rewritten:
            problems.append(f"reports rewritten after the grader had exited: {', '.join(rewritten)}")
            problems += [f"2 s later: {problem}" for problem in score_problems("", later, katas, expected=0, stdout_too=False)]
        problems += _left_behind("the attack's grade", children_before)
        problems += _connections(listener)

        true_score = manifest.get(ATTACKED).points
        after = grade(honest, tmp_path / "honest-out", [ATTACKED, OTHER], tmp_path / "honest-scratch", BUDGET)
        problems += [f"the honest learner graded next: {problem}" for problem in after.problems(expected=true_score, budget=BUDGET)]
        try:
            verdicts = [test["status"] for test in json.loads(after.reports["classroom.json"])["tests"]]
        except (KeyError, ValueError, TypeError):
            verdicts = None
        if verdicts != ["pass", "fail"]:
            problems.append(f"the honest learner graded next: classroom.json says {verdicts} for {ATTACKED} (the reference) "
                            f"and {OTHER} (the stub), not ['pass', 'fail']")
        problems += _left_behind("the honest grade after it", children_before)
        problems += before.changes()
        problems += [f"file written outside the scratch folder: {path}" for path in _canaries()]
    finally:
        _kill_left_behind(children_before)
        _set_subreaper(False)
        listener.close()
        before.restore()
        _remove_canaries()
    return problems


@dataclass
class Graded:
    katas: list[str]
    returncode: "int | None"  # None: still running at budget + SLACK, killed by this test
    seconds: float
    ended: float  # time.monotonic() when it exited
    stdout: str
    stderr: str
    reports: dict[str, bytes]  # read as soon as it exited
    github_files: dict[str, str]  # what the grade left in the files named by GITHUB_OUTPUT and GITHUB_STEP_SUMMARY

    def problems(self, *, expected: int, budget: int) -> list[str]:
        found = []
        if self.returncode is None:
            found.append(f"the grade was still running {budget + SLACK} s after it started (--budget {budget}): killed by the test")
        elif self.returncode != 0:
            found.append(f"the grader exited with {self.returncode} (stderr: {self.stderr[-300:]!r})")
        elif self.seconds > budget + SLACK:
            found.append(f"the grade took {self.seconds:.0f} s, past its --budget of {budget} s")
        found += score_problems(self.stdout, self.reports, self.katas, expected=expected)
        leaked = [name for name, text in [("stdout", self.stdout.encode()), ("stderr", self.stderr.encode()), *self.reports.items()]
                  if SECRET.encode() in text]
        if leaked:
            found.append(f"the grader's GITHUB_TOKEN leaked into {', '.join(leaked)}")
        found += [f"{name} (named in the grader's environment) was written: {text[:200]!r}" for name, text in self.github_files.items() if text]
        found += markup_problems(self.reports)
        if MARKER in self.stdout or MARKER in self.stderr:
            found.append("the learner's code wrote to the grader's own stdout/stderr (the marker is there)")
        return found


def grade_command(learner: Path, out: Path, katas: list[str], budget: int) -> list[str]:
    return [sys.executable, "-m", "harness", "grade", "--learner", str(learner), "--out", str(out), "--budget", str(budget),
            *[arg for kata in katas for arg in ("--kata", kata)]]


def grade(learner: Path, out: Path, katas: list[str], scratch: Path, budget: int) -> Graded:
    """Run the installed CLI as CI does, from the grader's checkout, with a fake token in its environment."""
    scratch.mkdir(parents=True)
    github = {"GITHUB_OUTPUT": scratch / "github-output", "GITHUB_STEP_SUMMARY": scratch / "github-step-summary"}
    for path in github.values():
        path.touch()
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update(OMP_NUM_THREADS="1", CI="1", GITHUB_ACTIONS="true", GITHUB_TOKEN=SECRET, ACTIONS_RUNTIME_TOKEN=SECRET,
               KATA_ALLOW_MODIFIED_GRADER="1",  # these tests run from a checkout being worked on
               **{key: str(path) for key, path in github.items()})
    started = time.monotonic()
    # Opened for appending, as a pipe would be: what anyone else writes there is not overwritten.
    with open(scratch / "stdout", "ab") as stdout, open(scratch / "stderr", "ab") as stderr:
        process = subprocess.Popen(grade_command(learner, out, katas, budget), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            returncode = process.wait(timeout=budget + SLACK)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = None
    ended = time.monotonic()
    return Graded(katas, returncode, ended - started, ended, (scratch / "stdout").read_text(errors="replace"),
                  (scratch / "stderr").read_text(errors="replace"), read_reports(out),
                  {key: path.read_text(errors="replace") for key, path in github.items()})


# ---------------------------------------------------------------- scores, from every place they are written

REPORTS = ["results.json", "classroom.json", "classroom.b64", "gradescope/results.json", "junit.xml", "summary.md"]


def read_reports(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in REPORTS if (out / name).is_file()}


def score_problems(stdout: str, reports: dict[str, bytes], katas: list[str], *, expected: int, stdout_too: bool = True) -> list[str]:
    """Where the score differs from `expected`: the grader's stdout and each report, read on its own."""
    found = []
    if stdout_too:
        lines = re.findall(r"^Score: (\d+)/(\d+) points.*$", stdout, flags=re.M)
        if len(lines) != 1:
            found.append(f"the grader's stdout has {len(lines)} 'Score:' lines (one expected): "
                         f"{re.findall(r'^Score:.*$', stdout, flags=re.M)}")
        elif int(lines[0][0]) != expected:
            found.append(f"the grader's stdout says {lines[0][0]}/{lines[0][1]} points (expected {expected})")
    missing = [name for name in REPORTS if name not in reports]
    if missing:
        found.append(f"reports missing: {', '.join(missing)}")
    for name, text in reports.items():
        try:
            score = _score_in(name, text, katas)
        except Exception as error:  # a report that does not parse cannot be trusted either
            found.append(f"{name} does not parse ({type(error).__name__}: {error})")
            continue
        if score != expected:
            found.append(f"{name} says {score} points (expected {expected})")
    return found


RAW_MARKUP = re.compile(r"<\s*(h\d|img|a\b|script|iframe)|!\[|\]\(|\x1b|\x00")


def markup_problems(reports: dict[str, bytes]) -> list[str]:
    """Learner text shown raw where it is rendered: HTML or Markdown markup, or control characters."""
    found = []
    rendered = {"summary.md": reports.get("summary.md", b"").decode(errors="replace")}
    try:
        rendered["gradescope/results.json (output, Markdown)"] = json.loads(reports.get("gradescope/results.json", b"{}"))["output"]
    except (ValueError, KeyError, TypeError):
        pass
    for name, text in rendered.items():
        if (match := RAW_MARKUP.search(text)) is not None:
            found.append(f"{name} shows learner markup raw: {text[max(0, match.start() - 40): match.end() + 40]!r}")
    return found


def _score_in(name: str, text: bytes, katas: list[str]) -> int:
    points = [manifest.get(kata).points for kata in katas]
    if name == "results.json":  # Exercism: a kata's points when every one of its tests passed
        tests = json.loads(text)["tests"]
        return sum(worth for number, worth in enumerate(points, start=1)
                   if [test for test in tests if test["task_id"] == number]
                   and all(test["status"] == "pass" for test in tests if test["task_id"] == number))
    if name == "classroom.json":
        return sum(test["score"] for test in json.loads(text)["tests"])
    if name == "classroom.b64":
        return sum(test["score"] for test in json.loads(base64.b64decode(text))["tests"])
    if name == "gradescope/results.json":
        return json.loads(text)["score"]
    if name == "junit.xml":
        total = 0
        for suite in ElementTree.fromstring(text).iter("testsuite"):
            properties = {prop.get("name"): prop.get("value") for prop in suite.iter("property")}
            if properties.get("status") == "done":
                total += int(properties.get("points", 0))
        return total
    if name == "summary.md":
        return int(re.match(r"## Transformer Katas: (\d+)/\d+ points", text.decode()).group(1))
    raise ValueError(name)


# ---------------------------------------------------------------- processes

PR_SET_CHILD_SUBREAPER = 36


def _set_subreaper(on: bool) -> None:
    """Orphans of the grade (a double fork, setsid or not) become children of this process."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid: (parent pid, state, command line), for every process this test can see."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                state, parent = stat.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError):
            continue
        found[int(entry.name)] = (int(parent), state, command)
    return found


def _children_of_this_process() -> set[int]:
    return {pid for pid, (parent, state, _) in _processes().items() if parent == os.getpid()}


def _survivors(children_before: set[int]) -> dict[int, str]:
    """Live processes with the marker, and live descendants of this process that it did not have before."""
    processes = _processes()
    ours = {os.getpid()}
    pid = os.getpid()
    while pid in processes and pid > 1:
        pid = processes[pid][0]
        ours.add(pid)
    roots = {pid for pid, (parent, state, command) in processes.items()
             if pid not in ours and (MARKER in command or (parent == os.getpid() and pid not in children_before))}
    found, frontier = set(), set(roots)
    while frontier:  # and everything below them
        found |= frontier
        frontier = {pid for pid, (parent, _, _) in processes.items() if parent in frontier} - found
    return {pid: processes[pid][2] for pid in sorted(found) if processes[pid][1] != "Z"}


def _reap() -> None:
    for pid, (parent, state, _) in _processes().items():
        if parent == os.getpid() and state == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _left_behind(when: str, children_before: set[int], wait: float = 3.0) -> list[str]:
    deadline = time.monotonic() + wait
    while True:
        _reap()
        survivors = _survivors(children_before)
        if not survivors or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if not survivors:
        return []
    shown = "; ".join(f"{pid}: {' '.join(command.split())[:80]}" for pid, command in list(survivors.items())[:5])
    _kill_left_behind(children_before)
    return [f"{len(survivors)} process(es) outlived {when}: {shown}"]


def _kill_left_behind(children_before: set[int]) -> None:
    for _ in range(50):
        survivors = _survivors(children_before)
        if not survivors:
            return
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
        _reap()


# ---------------------------------------------------------------- the network


def _connections(listener: socket.socket) -> list[str]:
    found = []
    while True:
        try:
            connection, address = listener.accept()
        except (BlockingIOError, OSError):
            return found
        with connection:
            connection.settimeout(1)
            try:
                data = connection.recv(200)
            except OSError:
                data = b""
        found.append(f"a connection reached 127.0.0.1:{listener.getsockname()[1]} from {address} ({data!r})")


# ---------------------------------------------------------------- the grader's files


def _canaries() -> list[Path]:
    return sorted(path for folder in CANARY_FOLDERS if folder.is_dir() for path in folder.glob(f"{CANARY}*"))


def _remove_canaries() -> None:
    for path in _canaries():
        path.unlink(missing_ok=True)


def _site_folders() -> dict[str, Path]:
    """The virtual environment, and the site-packages folders outside it that its Python could be made to read."""
    folders = {"virtual environment": Path(sys.prefix), "user site": Path(site.getusersitepackages())}
    purelib = Path(sysconfig.get_paths()["purelib"])
    if not purelib.is_relative_to(sys.prefix):
        folders["site-packages"] = purelib
    if sys.base_prefix != sys.prefix:
        folders["system site-packages"] = Path(sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"])
    return folders


@dataclass
class Snapshot:
    """The grader's checkout (contents), its virtual environment and site folders (names, sizes, times)."""
    checkout: dict[str, bytes]
    listings: dict[str, dict[str, tuple[int, int]]]
    missing_folders: list[Path] = field(default_factory=list)  # site folders (and their parents) that did not exist

    @classmethod
    def take(cls) -> "Snapshot":
        missing = []
        for folder in _site_folders().values():
            for each in [folder, *folder.parents]:
                if not each.exists():
                    missing.append(each)
        return cls(_checkout(), {name: _listing(folder, deep=name != "system site-packages") for name, folder in _site_folders().items()},
                   sorted(set(missing), key=lambda path: len(path.parts), reverse=True))

    def changes(self) -> list[str]:
        found: dict[tuple[str, str], list[str]] = {}
        now = _checkout()
        for name in sorted(self.checkout.keys() | now.keys()):
            if name not in now:
                found.setdefault(("the grader's checkout", "deleted"), []).append(name)
            elif name not in self.checkout:
                found.setdefault(("the grader's checkout", "created"), []).append(name)
            elif now[name] != self.checkout[name]:
                found.setdefault(("the grader's checkout", "changed"), []).append(name)
        for where, folder in _site_folders().items():
            before, after = self.listings[where], _listing(folder, deep=where != "system site-packages")
            for name in sorted(before.keys() | after.keys()):
                if name not in after:
                    found.setdefault((f"{where} ({folder})", "deleted"), []).append(name)
                elif name not in before:
                    if "__pycache__" not in Path(name).parts:  # Python writes bytecode there as it imports
                        found.setdefault((f"{where} ({folder})", "created"), []).append(name)
                elif after[name] != before[name]:
                    found.setdefault((f"{where} ({folder})", "changed"), []).append(name)
        return [f"{where}: {len(names)} file(s) {how}: {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}"
                for (where, how), names in found.items()]

    def restore(self) -> None:
        """Undo what an attack did: the checkout's files back, new files in the site folders deleted."""
        now = _checkout()
        for name, content in self.checkout.items():
            if now.get(name) != content:
                (ROOT / name).parent.mkdir(parents=True, exist_ok=True)
                (ROOT / name).write_bytes(content)
        for name in now.keys() - self.checkout.keys():
            (ROOT / name).unlink(missing_ok=True)
        for where, folder in _site_folders().items():
            for name in _listing(folder, deep=where != "system site-packages").keys() - self.listings[where].keys():
                if "__pycache__" not in Path(name).parts:
                    (folder / name).unlink(missing_ok=True)
        for folder in self.missing_folders:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                pass


def _checkout() -> dict[str, bytes]:
    files = {}
    for folder, subfolders, names in os.walk(ROOT):
        here = Path(folder)
        subfolders[:] = [name for name in subfolders if name not in NOT_THE_GRADERS and here / name != Path(sys.prefix)]
        for name in names:
            path = here / name
            if not path.is_symlink():
                files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    return files


def _listing(folder: Path, *, deep: bool = True) -> dict[str, tuple[int, int]]:
    """Every file under `folder` (deep), or only its own entries: size and modification time."""
    if not folder.is_dir():
        return {}
    if deep:
        paths = [Path(here) / name for here, _, names in os.walk(folder) for name in names]
    else:
        paths = [folder / name for name in os.listdir(folder)]
    found = {}
    for path in paths:
        try:
            stat = path.lstat()
        except OSError:
            continue
        found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found
