"""A kata's worker: the only process that runs the learner's code while a kata is graded.

The checker (harness.checker.isolation) starts it as

    python -I -c BOOT CODE_DIR SOCKET_FD SETTINGS_JSON

where CODE_DIR holds a copy of the harness, the manifest, the learner's kata file and the
reference solutions of the katas it depends on, and nothing else. Before any of the learner's
code is imported, the worker shuts itself in, as far as the system allows:

- as root: new PID, mount, network, IPC and UTS namespaces (so every process it starts dies with
  it, and it has no network); every mount read-only but its own scratch folder (a fresh tmpfs); nothing visible
  but an allowlist (the Python installation, its code and scratch folders, the system's libraries and
  devices: SYSTEM_PATHS), so the grader's checkout (.git included), the reports, the learner's
  checkout and $HOME are hidden under empty folders; then a
  separate user, or root without any capability where the Python installation is only root's;
- always (on Linux): a seccomp filter (harness.sandbox.seccomp) by which the kernel refuses new
  processes and programs, ptrace, pidfd calls and signals to other processes, whoever asks;
- always: resource limits (address space, CPU time, processes, file size, open files), and
  Python audit hooks, a second layer, that refuse new processes, ctypes, writes outside its scratch folder,
  network connections, signals to other processes, and reading solution files.

It then answers the checker over the inherited socket (harness.sandbox.wire) until told goodbye.
This module imports only the standard library at the top: it runs before the shutting-in.
"""
import ctypes
import errno
import json
import os
import signal
import socket
import stat
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_DUMPABLE = 1, 38, 24, 4
# What the worker may see of the machine besides its own two folders and the Python installation:
# the system's libraries and configuration, devices and the kernel's views. Everything else (the
# grader's checkout, its .git included, the learner's, $HOME, the rest of /tmp) is hidden: an
# allowlist, not a list of what to hide.
SYSTEM_PATHS = ("/dev", "/proc", "/sys", "/etc", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
WORKER_UID = 64_123  # a user of its own, with no files anywhere: it can write nothing of the grader's


def main() -> None:
    code_dir, fd, settings = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    protections = ["a process of its own, talking to the checker over an inherited socket"]
    work = settings["scratch"]
    # Everything but the allowlist: covered by mounts where the worker can have them, refused by its
    # audit hooks in every case. Listed once, before anything is hidden.
    hidden = _paths_to_hide(["/", *settings.get("hide", [])], _visible(code_dir, work))
    linux = sys.platform.startswith("linux")
    if linux:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the checker goes, so does the worker
    if linux and settings.get("contain"):
        code_dir, work = _contain(libc, code_dir, fd, settings, protections, hidden)
    else:  # said in the same words as a refused unshare: kata grade reads "no namespaces" as not contained
        protections.append("no namespaces (" + ("containment turned off" if linux else f"none on {sys.platform}") + ")")
    os.chdir(work)
    os.environ.clear()
    os.environ.update({"HOME": work, "TMPDIR": work, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                       "OMP_NUM_THREADS": str(settings.get("threads", 1)), "HF_HUB_OFFLINE": "1"})
    _limit_resources(settings, protections)
    # From here on the harness comes from the code folder: what was imported before (this module,
    # harness.config) is imported again from there, with the rest.
    sys.path[0:1] = [code_dir]
    for name in [name for name in sys.modules if name == "harness" or name.startswith("harness.")]:
        del sys.modules[name]
    _serve(fd, settings, protections, work, code_dir, hidden)


# ---------------------------------------------------------------- shutting in (root only)


def _contain(libc, code_dir: str, fd: int, settings: dict, protections: list, hidden: list) -> tuple[str, str]:
    """New namespaces, a read-only world but the scratch folder, hidden grading files, no
    privileges. Returns the code and scratch folders."""
    root_processes = _count_processes(0)
    as_root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    # Without root, a user namespace of its own first (where the system allows unprivileged ones):
    # there this process is root, and may raise the same walls as root does.
    user_namespace = 0 if as_root else CLONE_NEWUSER
    if libc.unshare(user_namespace | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET) != 0:
        protections.append(f"no namespaces (unshare: {os.strerror(ctypes.get_errno())})")
        return code_dir, settings["scratch"]
    if not as_root:
        _map_to_root(uid, gid)
    child = os.fork()  # the first process in the new PID namespace: when it ends, all of them do
    if child:
        os.close(fd)  # the checker sees the end of the wire as soon as the worker is gone
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    scratch = settings["scratch"]
    _mount(libc, "tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0777,size={settings.get('scratch_mib', 512)}m")
    _mount(libc, "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    unhidden = _hide(libc, hidden)
    read_only = 0
    for mount_point in _mount_points():
        if mount_point in (scratch, "/dev/shm", "/dev/pts") or mount_point.startswith(("/proc", "/sys")) or mount_point in hidden:
            continue
        try:
            # The mount's own flags kept: in a user namespace, the flags it came with are locked.
            _mount(libc, None, mount_point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | _locked_flags(mount_point))
            read_only += 1
        except OSError:
            pass
    if not as_root:
        protections.append("a user namespace of its own (the grader is not root)")
    protections += ["new PID namespace (every process it starts dies with it)", "no network (a network namespace of its own)",
                    f"read-only filesystem ({read_only} mounts) but a private scratch folder",
                    "only the Python installation, its own code and scratch folders and the system's libraries visible "
                    "(everything else hidden: the grader's and the learner's checkouts, .git, $HOME, /tmp"
                    + (f"; {unhidden} files could not be" if unhidden else "") + ")"]
    if not as_root:  # only the grader's own uid is mapped: no other user to become
        _drop_capabilities(libc, None)
        protections.append("no capabilities (root of its user namespace only)")
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        return code_dir, scratch
    os.setgroups([])
    if _reachable_by_others([sys.base_prefix, sys.prefix, *sys.path[1:], code_dir]):
        os.setgid(WORKER_UID)
        os.setuid(WORKER_UID)
        protections.append(f"a user of its own (uid {WORKER_UID}), no privileges")
    else:
        _drop_capabilities(libc, root_processes)
        protections.append("root without any capability (the Python installation is readable by root only); "
                           "a limit on its processes")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return code_dir, scratch


def _hide(libc, paths: list) -> int:
    """An empty read-only folder over each folder, /dev/null over each file. Returns how many files
    could not be covered (one that went away since it was listed needs no cover)."""
    refused = 0
    for path in paths:
        if os.path.isdir(path):
            _mount(libc, "tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555,size=4k")
            continue
        try:
            _mount(libc, "/dev/null", path, None, MS_BIND)
        except OSError as error:
            refused += error.errno != errno.ENOENT
    return refused


def _visible(code_dir: str, scratch: str) -> list:
    """The allowlist: every path the worker may read (and the folders on the way to them)."""
    return [os.path.realpath(path) for path in (sys.prefix, sys.base_prefix, *sys.path[1:], code_dir, scratch, *SYSTEM_PATHS)
            if path]


def _map_to_root(uid: int, gid: int) -> None:
    """In a fresh user namespace: be its root, as the grader's own uid and gid outside."""
    with open("/proc/self/setgroups", "w") as setgroups:
        setgroups.write("deny")
    with open("/proc/self/uid_map", "w") as uid_map:
        uid_map.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as gid_map:
        gid_map.write(f"0 {gid} 1")


def _paths_to_hide(paths: list, needed: list) -> list:
    """`paths`, but a folder that holds something the worker needs (the Python installation, a
    virtual environment inside the checkout) is hidden child by child, sparing that path: its
    other folders and its files (a git bundle or a copy of a solution lying in /tmp) are hidden.
    Symbolic links are left: they lead to a hidden path or to one the worker may see anyway."""
    hidden = []
    for path in paths:
        if os.path.islink(path) or not os.path.exists(path):
            continue
        path = os.path.realpath(path)
        if not os.path.isdir(path):
            hidden.append(path)
            continue
        inside = path if path.endswith(os.sep) else path + os.sep  # "/" holds "/usr", not "//usr"
        holds = [each for each in needed if each == path or each.startswith(inside)]
        if any(each == path for each in holds):
            continue
        if not holds:
            hidden.append(path)
            continue
        children = [os.path.join(path, name) for name in sorted(os.listdir(path))]
        hidden += _paths_to_hide(children, holds)
    return list(dict.fromkeys(hidden))


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _locked_flags(mount_point: str) -> int:
    """nodev, noexec and the atime flags a mount has (statvfs's ST_ flags are the MS_ ones)."""
    try:
        flags = os.statvfs(mount_point).f_flag
    except OSError:
        return 0
    return flags & (MS_NODEV | MS_NOEXEC | 1024 | 2048 | (1 << 21))  # MS_NOATIME, MS_NODIRATIME, MS_RELATIME


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        for line in mounts:
            point = line.split()[4].replace("\\040", " ")
            if point not in points:
                points.append(point)
    return points


def _reachable_by_others(paths: list[str]) -> bool:
    """Whether a user other than root can read `paths`: every folder above them is open to all."""
    for path in filter(None, paths):
        path = os.path.realpath(path)
        while True:
            try:
                mode = os.stat(path).st_mode
            except OSError:
                break
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                return False
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
    return True


def _drop_capabilities(libc, root_processes: int) -> None:
    import resource

    for capability in range(64):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    # Processes are counted per user: root's count is shared with the whole machine.
    if root_processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (root_processes + 16, root_processes + 16))
    return "processes"


def _count_processes(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                count += os.stat(f"/proc/{name}").st_uid == uid
            except OSError:
                pass
    return count


# ---------------------------------------------------------------- always


def _limit_resources(settings: dict, protections: list) -> None:
    try:
        import resource
    except ImportError:  # not POSIX
        protections.append("no resource limits (not available on this system)")
        return
    limits = {"RLIMIT_AS": settings.get("memory_bytes"), "RLIMIT_CPU": settings.get("cpu_seconds"),
              "RLIMIT_FSIZE": 64 * 2**20, "RLIMIT_NOFILE": 256, "RLIMIT_CORE": 0}
    if os.geteuid() != 0:
        limits["RLIMIT_NPROC"] = _count_processes(os.geteuid()) + 16
    applied = []
    for name, value in limits.items():
        if value is None or not hasattr(resource, name):
            continue
        try:
            soft, hard = resource.getrlimit(getattr(resource, name))
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(getattr(resource, name), (value, value))
            applied.append(name.removeprefix("RLIMIT_").lower())
        except (ValueError, OSError):  # macOS cannot set RLIMIT_AS, for one
            pass
    protections.append("limits on " + ", ".join(applied))


def _serve(fd: int, settings: dict, protections: list, work: str, code_dir: str, hidden: list) -> None:
    sock = socket.socket(fileno=fd)
    import torch  # noqa: F401  (before the audit hooks: torch's own start-up opens libraries)
    from jaxtyping import jaxtyped  # noqa: F401

    from harness import loader, manifest
    from harness.sandbox import wire
    kata = manifest.get(settings["kata"])
    learner_file = manifest.ROOT / "katas" / kata.folder / f"{kata.name}.py"
    loader.configure_worker(kata)
    sys.dont_write_bytecode = True
    sys.meta_path.insert(0, _NoReference())
    torch.set_num_threads(int(settings.get("threads", 1)))
    protections.append(_install_seccomp())
    _install_audit_hook(work, code_dir, hidden)
    protections.append("audit hooks: no new processes, no ctypes, no network, no writes outside its scratch folder, "
                       "no solution files")
    peer = wire.Peer(sock, 1, is_learner_frame=lambda filename: os.path.realpath(filename) == str(learner_file))
    from harness.sandbox.crossing import rebuildable_classes, shareable_classes

    peer.shareable = shareable_classes(kata, loader.load_part)
    peer.rebuildable = rebuildable_classes(kata, lambda each: loader.load(each.reference_file, each.symbol))
    peer.exports = {"symbol": lambda: loader.load_under_test(kata), "protections": lambda: protections,
                    **{f"module:{name}": _importer(name) for name in MODULES_A_TEST_MAY_PATCH}}
    try:
        peer.serve_forever()
    except wire.PeerClosed:
        pass
    os._exit(0)


def _install_seccomp() -> str:
    """The kernel's wall against new processes, ptrace and signals (harness.sandbox.seccomp), in
    every mode: with or without root, with or without namespaces."""
    if not sys.platform.startswith("linux"):
        return f"no seccomp filter (none on {sys.platform})"
    from harness.sandbox import seccomp

    try:
        return seccomp.install()
    except OSError as error:
        return f"no seccomp filter ({error.strerror or error})"


# What a test may replace parts of where the learner's code runs (harness.testing.as_the_kata_sees):
# another kata's solution by a stand-in that records how it is called, torch.softmax by one that refuses.
MODULES_A_TEST_MAY_PATCH = ("harness.parts", "torch", "torch.nn.functional")


def _importer(name: str):
    import importlib

    return lambda: importlib.import_module(name)


_REFUSED_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
                   "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function", "os.kill",
                   "os.killpg", "signal.pthread_kill", "socket.connect", "socket.bind", "socket.sendto",
                   "socket.getaddrinfo")
_WRITING_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown",
                   "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move")


class GradingForbidden(PermissionError):
    """What the kata's code tried is not allowed while it is graded (a new process, ctypes, a write...)."""


def _install_audit_hook(work: str, code_dir: str, forbidden: list) -> None:  # noqa: C901 - one closure on purpose
    """Python-level walls, in force whatever the system allows. An audit hook cannot be removed.
    Its checks live in this closure, not in module functions that the learner's code could rebind."""
    work = os.path.realpath(work)
    allowed_reading = [os.path.realpath(code_dir)]
    own_pid = os.getpid()

    def inside(path, folders) -> bool:
        try:
            path = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(path == folder or path.startswith(folder + os.sep) for folder in folders)

    def hook(event: str, args: tuple) -> None:
        if event in _REFUSED_EVENTS or event.startswith(("os.exec", "os.spawn", "os.posix_spawn")):
            if event in ("os.kill", "os.killpg") and args and args[0] in (own_pid, 0) and args[1] == 0:
                return  # a check that a process exists
            raise GradingForbidden(f"not allowed while a kata is graded: {event}")
        if event == "open" and args:
            path, mode = args[0], args[1] if len(args) > 1 else "r"
            if isinstance(path, int):
                return
            writing = isinstance(mode, str) and any(flag in mode for flag in "wax+")
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing |= bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
            if writing and not inside(path, [work]):
                raise GradingForbidden(f"not allowed while a kata is graded: writing {path}")
            if inside(path, forbidden) and not inside(path, allowed_reading):
                raise GradingForbidden(f"not allowed while a kata is graded: reading {path}")
            if _is_solution(path, allowed_reading):
                raise GradingForbidden(f"not allowed while a kata is graded: reading a solution file ({path})")
        elif event in _WRITING_EVENTS:
            paths = [arg for arg in args if isinstance(arg, (str, bytes, os.PathLike))]
            if any(not inside(path, [work]) for path in paths):
                raise GradingForbidden(f"not allowed while a kata is graded: {event} {paths}")

    sys.addaudithook(hook)


def _is_solution(path, allowed: list) -> bool:
    """A file named like a reference solution, outside the worker's own code folder."""
    try:
        path = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    if any(path.startswith(folder + os.sep) for folder in allowed):
        return False
    parts = path.split(os.sep)
    return "reference" in parts[:-1] and path.endswith(".py")


class _NoReference:
    """Refuses `import reference...`: a kata reaches the solutions it builds on through harness.parts."""

    def find_spec(self, name, path=None, target=None):
        if name == "reference" or name.startswith("reference."):
            raise ImportError(f"`import {name}`: a kata file may not import the reference solutions. The katas it builds on "
                              "are in `harness.parts` (e.g. parts.attention_scores); its own solution is yours to write.")
        return None


BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from harness.sandbox.worker import main; main()"
