"""A seccomp filter for the worker: the kernel refuses what the audit hooks can only ask Python to refuse.

Audit hooks see what Python reports, and some calls report nothing (`_posixsubprocess.fork_exec`,
`os.pidfd_open`, `signal.pidfd_send_signal`, anything reached through ctypes). The filter below
is checked by the kernel on every system call of every thread, whoever makes it, and cannot be
lifted once installed. It refuses, with EPERM:

- new processes and programs: fork, vfork, execve, execveat, and clone unless it makes a thread
  (torch's thread pool must still start); clone3 answers ENOSYS, so the C library falls back to
  clone, whose flags a filter can read (clone3 passes them in memory, out of a filter's sight);
- reaching into other processes: ptrace, process_vm_readv/writev, pidfd_open/getfd/send_signal;
- signals to any process but its own: kill, tgkill and their sigqueue forms name this process
  or are refused (tkill, which names a bare thread id, is refused: the C library never uses it).

Installing it needs no privilege: only PR_SET_NO_NEW_PRIVS, which the worker sets anyway.
Standard library only: the worker installs it before any of the learner's code is imported.
"""
import ctypes
import errno
import os
import platform
import struct

PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1  # TSYNC: every thread already started gets it too
CLONE_THREAD = 0x10000
# BPF instructions (linux/filter.h) and seccomp's answers (linux/seccomp.h).
LOAD_WORD, JUMP_IF_EQUAL, JUMP_IF_BITS, JUMP_IF_AT_LEAST, RETURN = 0x20, 0x15, 0x45, 0x35, 0x06
ALLOW, ERRNO, KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
# Offsets in struct seccomp_data: the call's number, the architecture, the arguments' low words.
NR, ARCH = 0, 4
ARG_LOW = [16 + 8 * index for index in range(6)]

# Per architecture: its audit id, the seccomp call's number, and the numbers of the calls filtered.
ARCHITECTURES = {
    "x86_64": dict(audit=0xC000003E, seccomp=317, clone=56, clone3=435, kill=62, tgkill=234, rt_sigqueueinfo=129,
                   rt_tgsigqueueinfo=297, refused=dict(fork=57, vfork=58, execve=59, execveat=322, ptrace=101,
                                                       process_vm_readv=310, process_vm_writev=311, tkill=200,
                                                       pidfd_open=434, pidfd_send_signal=424, pidfd_getfd=438)),
    "aarch64": dict(audit=0xC00000B7, seccomp=277, clone=220, clone3=435, kill=129, tgkill=131, rt_sigqueueinfo=138,
                    rt_tgsigqueueinfo=240, refused=dict(execve=221, execveat=281, ptrace=117, process_vm_readv=270,
                                                        process_vm_writev=271, tkill=130, pidfd_open=434,
                                                        pidfd_send_signal=424, pidfd_getfd=438)),
}
X32_CALLS = 0x40000000  # x86_64's other ABI: its numbers start here; refused whole


def program(arch: dict, own_pid: int) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jump_if_true, jump_if_false, k) instructions."""
    refuse, allow = (RETURN, 0, 0, ERRNO | errno.EPERM), (RETURN, 0, 0, ALLOW)
    steps = [(LOAD_WORD, 0, 0, ARCH),
             (JUMP_IF_EQUAL, 1, 0, arch["audit"]),
             (RETURN, 0, 0, KILL_PROCESS),  # a call made through another architecture's numbers
             (LOAD_WORD, 0, 0, NR)]
    if arch["audit"] == ARCHITECTURES["x86_64"]["audit"]:
        steps += [(JUMP_IF_AT_LEAST, 0, 1, X32_CALLS), refuse]
    for number in arch["refused"].values():
        steps += [(JUMP_IF_EQUAL, 0, 1, number), refuse]
    steps += [(JUMP_IF_EQUAL, 0, 1, arch["clone3"]), (RETURN, 0, 0, ERRNO | errno.ENOSYS)]
    # clone: a thread (CLONE_THREAD in the flags, the first argument) or nothing.
    # Each check below is five steps: not this call, jump over the other four (the number is still loaded).
    steps += [(JUMP_IF_EQUAL, 0, 4, arch["clone"]),
              (LOAD_WORD, 0, 0, ARG_LOW[0]),
              (JUMP_IF_BITS, 0, 1, CLONE_THREAD),
              allow, refuse]
    # Signals: the first argument (a pid, or a thread group id) must be this process.
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        steps += [(JUMP_IF_EQUAL, 0, 4, arch[name]),
                  (LOAD_WORD, 0, 0, ARG_LOW[0]),
                  (JUMP_IF_EQUAL, 0, 1, own_pid),
                  allow, refuse]
    return steps + [allow]


def install() -> str:
    """Install the filter on every thread of this process. Returns what it refuses, in words, or
    raises OSError saying why it could not."""
    arch = ARCHITECTURES.get(platform.machine())
    if arch is None:
        raise OSError(errno.ENOSYS, f"no seccomp filter for the {platform.machine()} architecture")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    steps = program(arch, os.getpid())
    code = b"".join(struct.pack("HBBI", *step) for step in steps)
    buffer = ctypes.create_string_buffer(code, len(code))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Program(len(steps), ctypes.addressof(buffer))
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(arch["seccomp"]), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                    ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(fprog)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"seccomp: {os.strerror(error)}")
    return ("seccomp filter (the kernel refuses new processes and programs, ptrace, pidfd and process_vm calls, "
            "signals to other processes)")
