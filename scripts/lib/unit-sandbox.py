#!/usr/bin/python3
"""Runs a command under the system-call filter a systemd unit declares.

  unit-sandbox.py UNIT -- COMMAND ARGS...

Reads the unit's SystemCallFilter= and SystemCallErrorNumber= lines, expands
their @groups with `systemd-analyze syscall-filter` (the same tables systemd
uses), builds the allow list the way systemd does (allowed groups, minus the
`~` ones), loads it with libseccomp (Debian's python3-seccomp) and execs the
command, which then inherits the filter. This checks that shoal starts and
serves with no system call outside the unit's filter, without a running
systemd (scripts/packaging-check.sh).
"""
import errno
import os
import subprocess
import sys

import seccomp


def expand(name, seen=None):
    """Syscall names of `name` (a @group or a plain syscall)."""
    if not name.startswith("@"):
        return {name}
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", name],
        check=True, capture_output=True, text=True,
    ).stdout
    names = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        names |= expand(line, seen)
    return names


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    unit, cmd = sys.argv[1], sys.argv[3:]
    allow, deny, err = None, set(), errno.EPERM
    with open(unit) as f:
        for line in f:
            line = line.strip()
            if line.startswith("SystemCallFilter="):
                value = line.split("=", 1)[1].split()
                if value and value[0].startswith("~"):
                    value[0] = value[0][1:]
                    for n in value:
                        deny |= expand(n)
                else:
                    allow = allow or set()
                    for n in value:
                        allow |= expand(n)
            elif line.startswith("SystemCallErrorNumber="):
                err = getattr(errno, line.split("=", 1)[1])
    if allow is None:
        sys.exit(f"{unit}: no allow-list SystemCallFilter= line")
    allowed = allow - deny
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(err))
    for name in sorted(allowed):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError):
            pass  # not a system call on this architecture
    for must in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        if must not in allowed:
            sys.exit(f"{unit}: the filter does not allow {must}")
    # Unprivileged processes may only load a filter with no_new_privs.
    f.set_attr(seccomp.Attr.CTL_NNP, 1)
    f.load()
    os.execvp(cmd[0], cmd)


main()
