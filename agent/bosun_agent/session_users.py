"""Who a Session Manager shell runs as, the login environment it gets, and how its process
becomes that user.

The server chooses the run-as user (a preference, a group setting or a policy tag); the node
decides whether it can honour it. It refuses, with a message meant for the person who asked:

- a user that does not exist here (the server cannot know every node's users);
- root (uid 0, whatever its name) unless the session preferences allow it, since a root
  shell bypasses everything the run-as setting is for;
- a different user when the agent does not run as root: only root can switch users, and a
  quiet fallback to the agent's own user would hand out an account nobody chose.

When the agent runs as root the shell's process drops to the user before it executes
anything: supplementary groups, then the group, then the user (the other order fails, or
keeps root's groups), and then checks that it can no longer become root again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import signal
import termios
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bosun_agent.process_groups import RUN_MARKER_ENV

TERM = "xterm-256color"  # what the browser's xterm.js emulates
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_SHELL = "/bin/sh"  # what an empty login shell field means (passwd(5))
LOCALE_DIR = Path("/usr/lib/locale")
MAX_NAME_LENGTH = 256
C_UTF8 = "C.UTF-8"
GLIBC_WITH_BUILTIN_C_UTF8 = (2, 35)
# Dispositions the shell must start with whatever the agent had: an agent started in the
# background or under nohup ignores some of these, and ignored signals survive exec (Ctrl-C
# would do nothing in the session).
RESET_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCHLD,
    signal.SIGPIPE,
    signal.SIGWINCH,
)


class SessionRefused(Exception):
    """The session cannot start on this node; the message says why, for the user."""


@dataclass(frozen=True)
class RunAs:
    """A resolved run-as user. `groups` is None when the shell needs no switch (the agent
    already runs as that user), else every group id the shell must end up with."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    groups: tuple[int, ...] | None

    @property
    def switches(self) -> bool:
        return self.groups is not None


def _entry_for_uid(uid: int) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(uid)
    except KeyError:
        return None


def resolve_run_as(name: str, *, allow_root: bool = False, agent_uid: int | None = None) -> RunAs:
    """The user a session runs as, or SessionRefused. An empty name means the agent's own
    user. `agent_uid` is the agent's effective uid (tests pass another to play a non-root
    agent)."""
    me = os.geteuid() if agent_uid is None else agent_uid
    if not name:
        entry = _entry_for_uid(me)
        if entry is None:
            raise SessionRefused(f"the agent's user (uid {me}) has no entry in the user database")
    else:
        if "\0" in name or len(name) > MAX_NAME_LENGTH:
            raise SessionRefused("the run-as user name is not a valid user name")
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SessionRefused(f"run-as user '{name}' does not exist on this node") from None
    if entry.pw_uid == 0 and not allow_root:
        raise SessionRefused(
            f"run-as user '{entry.pw_name}' is root (uid 0), and sessions as root are not "
            "allowed: choose another run-as user, or allow root in the session preferences"
        )
    groups: tuple[int, ...] | None = None
    if entry.pw_uid != me:
        if me != 0:
            agent = _entry_for_uid(me)
            agent_name = agent.pw_name if agent is not None else f"uid {me}"
            raise SessionRefused(
                f"cannot start a session as '{entry.pw_name}': the agent runs as "
                f"'{agent_name}', and must run as root to switch users"
            )
        try:
            groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        except OSError as exc:
            raise SessionRefused(
                f"cannot read the groups of run-as user '{entry.pw_name}': {exc}"
            ) from exc
    return RunAs(
        name=entry.pw_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        home=entry.pw_dir or "/",
        shell=entry.pw_shell or DEFAULT_SHELL,
        groups=groups,
    )


def drop_privileges(run_as: RunAs) -> None:
    """In the shell's process, before exec: become the user for good. Groups first (as root
    only), then the group, then the user; then prove root is gone. Raises on any failure,
    which aborts the start: a shell must never run with privileges nobody chose."""
    if run_as.groups is None:
        return
    os.setgroups(list(run_as.groups))
    os.setgid(run_as.gid)
    os.setuid(run_as.uid)
    if (os.getuid(), os.geteuid()) != (run_as.uid, run_as.uid) or (
        os.getgid(),
        os.getegid(),
    ) != (run_as.gid, run_as.gid):
        raise PermissionError(f"still running as uid {os.geteuid()}, gid {os.getegid()}")
    if set(os.getgroups()) - set(run_as.groups) - {run_as.gid}:
        raise PermissionError("supplementary groups were not replaced")
    if run_as.uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise PermissionError("root could be regained after switching users")


def utf8_locale(environ: dict[str, str] | None = None) -> str | None:
    """A UTF-8 locale for the shell: the agent's own when it is one (LC_ALL, LC_CTYPE, LANG:
    whichever decides), else C.UTF-8 where the C library has it; None leaves it to the
    shell's profile rather than naming a locale that would only print warnings."""
    env = os.environ if environ is None else environ
    current = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if "utf-8" in current.lower() or "utf8" in current.lower():
        return current
    return C_UTF8 if _c_utf8_available() else None


def _c_utf8_available() -> bool:
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        libc = None
    if not libc:
        return True  # not glibc (musl and the BSDs know C.UTF-8 without locale files)
    if any((LOCALE_DIR / name).is_dir() for name in ("C.utf8", "C.UTF-8")):
        return True
    try:
        version = tuple(int(part) for part in libc.split()[-1].split(".")[:2])
    except ValueError:
        return False
    return version >= GLIBC_WITH_BUILTIN_C_UTF8


def session_environment(run_as: RunAs, *, marker: str = "") -> dict[str, str]:
    """The shell's whole environment, built from nothing: the agent's own (its state
    directory, proxies, anything a service manager put there) is none of the user's
    business. The login shell's profile adds the rest, as after a console login. `marker`
    (the session's id) lets a restarted agent find shells a crash left behind."""
    env = {
        "HOME": run_as.home,
        "USER": run_as.name,
        "LOGNAME": run_as.name,
        "SHELL": run_as.shell,
        "TERM": TERM,
        "PATH": ROOT_PATH if run_as.uid == 0 else USER_PATH,
    }
    locale = utf8_locale()
    if locale:
        env["LANG"] = env["LC_ALL"] = locale
    if marker:
        env[RUN_MARKER_ENV] = marker
    return env


def shell_argv(shell: str, command: str, profile: str) -> list[str]:
    """A login shell's argv[0] starts with "-" (what login(1) does, and how the shell knows to
    read the profile files); an interactive command runs in a plain shell, after the profile."""
    if command:
        return [shell, "-c", f"{profile}\n{command}" if profile.strip() else command]
    return ["-" + os.path.basename(shell)]


def child_setup(run_as: RunAs, error_fd: int) -> Callable[[], None]:
    """What the shell's process does between fork and exec (subprocess's `preexec_fn`, after
    its setsid and its dup2 of the PTY onto 0, 1 and 2): syscalls only, every value computed
    beforehand. The reason for a failure goes to `error_fd`, for the agent's message."""

    def setup() -> None:
        step = "resetting signals"
        try:
            for signum in RESET_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            step = "taking the terminal"
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            step = f"switching to user '{run_as.name}'"
            drop_privileges(run_as)
            step = "entering the home directory"
            try:
                os.chdir(run_as.home)
            except OSError:
                os.chdir("/")  # as login(1) does when the home directory is missing
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.write(error_fd, f"{step} failed: {exc}".encode(errors="replace"))
            raise

    return setup


def profile_input(profile: str) -> bytes:
    """The shell profile as typed input for a login shell: one line each, blanks dropped."""
    return b"".join(line.encode() + b"\n" for line in profile.splitlines() if line.strip())
