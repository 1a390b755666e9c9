# Copyright (c) talentmesh.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test bed's connection to its own rootful podman containers (not part of the collection)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: podman_nsenter
short_description: Run tasks in a rootful podman container of this machine by entering its namespaces
description:
  - The connection of the project's test bed (Molecule scenarios and C(make lab)) to its rootful podman containers on
    the controller's own machine. It is not part of the collection and not meant for anything else.
  - The container's init process is resolved once per task and play host (C(podman container inspect), cached per run
    and checked against the process table); every command then runs through C(nsenter) in the container's mount, UTS,
    IPC, network, PID and cgroup namespaces, placed in the container's cgroups, with the environment C(podman exec)
    gives (C(PATH), C(HOME), C(TERM), C(container) from the container's init) and C(/) as working directory.
  - It exists for speed. C(containers.podman.podman) starts one C(podman exec) per command (about 0.15 s on an idle machine, several
    per task, and more under load as they queue on podman's lock) and cannot pipeline; here a command costs a few
    milliseconds and modules are pipelined as over SSH.
  - Differences from C(podman exec), by class; the role code sees none of them on a real host over SSH either. Commands
    run with root's full capability set and without the container's seccomp filter (as root over SSH does on a host;
    services started by the container's systemd still get the container's bounding set). Privilege escalation with a
    password prompt is refused (the test bed runs as root).
options:
  remote_addr:
    description: The container's name or ID.
    default: inventory_hostname
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_host
  podman_executable:
    description: The podman command used to resolve the container.
    default: podman
    type: str
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
extends_documentation_fragment:
  - connection_pipelining
"""

import os
import shutil
import subprocess

import ansible.constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

# What `podman exec` passes from the container's configuration; anything else in the controller's environment
# (virtualenv, Molecule, CI variables) stays out of the container.
CONTAINER_ENV = ("PATH", "HOME", "TERM", "container")
DEFAULT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
NAMESPACES = ("--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup")


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _is_init_of(pid, container_id):
    """True if pid is, right now, the init process (pid 1 inside) of the container with this id."""
    try:
        status = to_text(_read("/proc/%d/status" % pid))
        cgroup = to_text(_read("/proc/%d/cgroup" % pid))
    except OSError:
        return False
    nspid = [line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")]
    return bool(nspid) and nspid[0][-1] == "1" and ("libpod-" + container_id) in cgroup


def _cgroup_mounts():
    """(controllers, mount point) of this machine's cgroup hierarchies; controllers is () for cgroup2."""
    mounts = []
    for line in to_text(_read("/proc/self/mountinfo")).splitlines():
        left, dummy, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 3 or fields[3] != "/":
            continue
        if rest[0] == "cgroup2":
            mounts.append(((), fields[4]))
        elif rest[0] == "cgroup":
            mounts.append((tuple(rest[2].split(",")), fields[4]))
    return mounts


def _cgroup_procs(pid):
    """The cgroup.procs files that put a process where `podman exec` puts it: the container's cgroup in every
    hierarchy (its init's, without the init.scope systemd keeps PID 1 in), the init's own as a fallback."""
    mounts = _cgroup_mounts()
    files = []
    for line in to_text(_read("/proc/%d/cgroup" % pid)).splitlines():
        dummy, controllers, path = line.split(":", 2)
        wanted = set(controllers.split(",")) if controllers else set()
        for have, mount in mounts:
            if (not wanted and not have) or (wanted and wanted.issubset(have)):
                paths = [path[: -len("/init.scope")]] if path.endswith("/init.scope") else []
                files.append([os.path.join(mount, p.lstrip("/"), "cgroup.procs") for p in paths + [path]])
                break
    return files


class Connection(ConnectionBase):
    """Commands in a local rootful podman container, through nsenter."""

    transport = "podman_nsenter"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pid = None
        self._env = None
        self._cgroups = []
        self._nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"

    def _resolve(self, name):
        """pid of the container's init: from this run's cache if it is still that process, else from podman."""
        cache = os.path.join(C.DEFAULT_LOCAL_TMP, "podman_nsenter-" + name.replace("/", "_"))
        try:
            pid, container_id = to_text(_read(cache)).split()
            if _is_init_of(int(pid), container_id):
                return int(pid)
        except (OSError, ValueError):
            pass
        podman = self.get_option("podman_executable")
        proc = subprocess.run([podman, "container", "inspect", "--format", "{{.State.Pid}} {{.Id}}", name],
                              capture_output=True, check=False)
        out = to_text(proc.stdout).split()
        if proc.returncode != 0 or len(out) != 2 or out[0] == "0":
            raise AnsibleConnectionFailure("container %s is not running here (podman container inspect: %s)"
                                           % (name, to_text(proc.stderr).strip() or "no running process"))
        pid, container_id = int(out[0]), out[1]
        tmp = "%s.%d" % (cache, os.getpid())
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write("%d %s\n" % (pid, container_id))
        os.replace(tmp, cache)
        return pid

    def _connect(self):
        if not self._connected:
            name = self.get_option("remote_addr")
            self._pid = self._resolve(name)
            raw = to_text(_read("/proc/%d/environ" % self._pid), errors="surrogate_or_strict")
            init_env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
            self._env = dict(DEFAULT_ENV, **{k: v for k, v in init_env.items() if k in CONTAINER_ENV})
            try:
                self._cgroups = _cgroup_procs(self._pid)
            except OSError as exc:
                display.vvvv("podman_nsenter: cgroups of %s not readable (%s): commands stay in the controller's"
                             % (name, exc))
            display.vvv("ESTABLISH PODMAN_NSENTER CONNECTION (init pid %d)" % self._pid, host=name)
            self._connected = True
        return self

    def _join_cgroups(self):
        # Runs in the child between fork and exec: nsenter and everything it starts inherit the membership.
        for candidates in self._cgroups:
            for procs in candidates:
                try:
                    with open(procs, "w", encoding="ascii") as handle:
                        handle.write("0\n")
                    break
                except OSError:
                    continue

    def _run(self, argv, stdin, stdout):
        cmd = [self._nsenter, "--target", str(self._pid)] + list(NAMESPACES) + ["--wd=/", "--"] + argv
        return subprocess.Popen([to_bytes(a, errors="surrogate_or_strict") for a in cmd], stdin=stdin, stdout=stdout,
                                stderr=subprocess.PIPE, env=self._env, preexec_fn=self._join_cgroups)

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        if sudoable and self.become and self.become.expect_prompt():
            raise AnsibleError("podman_nsenter: privilege escalation with a password prompt is not supported")
        display.vvv("EXEC %s" % to_text(cmd), host=self.get_option("remote_addr"))
        proc = self._run(["/bin/sh", "-c", cmd], subprocess.PIPE, subprocess.PIPE)
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self.get_option("remote_addr"))
        try:
            with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as source:
                proc = self._run(["/bin/sh", "-c", 'cat > "$1"', "sh", out_path], source, subprocess.DEVNULL)
                dummy, stderr = proc.communicate()
        except OSError as exc:
            raise AnsibleError("podman_nsenter: cannot read %s: %s" % (in_path, exc)) from exc
        if proc.returncode != 0:
            raise AnsibleError("podman_nsenter: failed to write %s: %s" % (out_path, to_text(stderr).strip()))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self.get_option("remote_addr"))
        try:
            with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as target:
                proc = self._run(["/bin/sh", "-c", 'cat "$1"', "sh", in_path], subprocess.DEVNULL, target)
                dummy, stderr = proc.communicate()
        except OSError as exc:
            raise AnsibleError("podman_nsenter: cannot write %s: %s" % (out_path, exc)) from exc
        if proc.returncode != 0:
            raise AnsibleError("podman_nsenter: failed to read %s: %s" % (in_path, to_text(stderr).strip()))

    def close(self):
        self._connected = False
