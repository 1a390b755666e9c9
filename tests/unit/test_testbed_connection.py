"""The test bed's podman_nsenter connection (testbed/connection_plugins): where it puts a command's process (the
container's cgroups, as `podman exec` does), which environment it passes, and that commands, pipelined input and file
transfers work. The end-to-end cases enter a stand-in container made with unshare, so they need root, unshare and
nsenter, as the test bed does."""
import importlib.util
import os
import subprocess
import time

import pytest
from ansible.errors import AnsibleError
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location("podman_nsenter",
                                              os.path.join(TOP, "testbed", "connection_plugins", "podman_nsenter.py"))
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)

CID = "3b6d350265c417dce9ea957005dc8c174ffe884f162354b8930bfbdab0897147"
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
35 31 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
36 31 0:33 /nested /sys/fs/cgroup/elsewhere rw,relatime - cgroup cgroup rw,pids
37 31 0:34 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
"""
HYBRID_CGROUP = """\
9:name=systemd:/libpod_parent/libpod-{cid}/init.scope
3:pids:/libpod_parent/libpod-{cid}
2:cpuacct:/libpod_parent/libpod-{cid}
1:cpu:/libpod_parent/libpod-{cid}
0::/libpod_parent/libpod-{cid}/init.scope
""".format(cid=CID)
STATUS = "Name:\tsystemd\nNSpid:\t6119\t1\n"


def fake_proc(monkeypatch, files):
    def read(path):
        if path not in files:
            raise FileNotFoundError(path)
        return files[path].encode()
    monkeypatch.setattr(plugin, "_read", read)


def test_cgroups_are_the_containers_own_in_every_hierarchy(monkeypatch):
    fake_proc(monkeypatch, {"/proc/self/mountinfo": HYBRID_MOUNTINFO, "/proc/6119/cgroup": HYBRID_CGROUP})
    base = "libpod_parent/libpod-" + CID
    assert plugin._cgroup_procs(6119) == [
        # systemd keeps PID 1 in init.scope; podman exec puts commands in the container's cgroup above it.
        ["/sys/fs/cgroup/systemd/%s/cgroup.procs" % base, "/sys/fs/cgroup/systemd/%s/init.scope/cgroup.procs" % base],
        # the pids hierarchy mounted with a non-root path (/nested) is not the one to write to.
        ["/sys/fs/cgroup/pids/%s/cgroup.procs" % base],
        ["/sys/fs/cgroup/cpuacct/%s/cgroup.procs" % base],
        ["/sys/fs/cgroup/cpu/%s/cgroup.procs" % base],
        ["/sys/fs/cgroup/unified/%s/cgroup.procs" % base, "/sys/fs/cgroup/unified/%s/init.scope/cgroup.procs" % base],
    ]


def test_cgroup2_only_machine(monkeypatch):
    fake_proc(monkeypatch, {"/proc/self/mountinfo": "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                            "/proc/7/cgroup": "0::/machine.slice/libpod-%s.scope/init.scope\n" % CID})
    assert plugin._cgroup_procs(7) == [["/sys/fs/cgroup/machine.slice/libpod-%s.scope/cgroup.procs" % CID,
                                        "/sys/fs/cgroup/machine.slice/libpod-%s.scope/init.scope/cgroup.procs" % CID]]


@pytest.mark.parametrize("status, cgroup, expected", [
    (STATUS, HYBRID_CGROUP, True),
    ("NSpid:\t6119\t57\n", HYBRID_CGROUP, False),  # a process of the container, not its init (e.g. a hardened unit)
    ("NSpid:\t6119\n", "0::/user.slice\n", False),  # the pid was reused by a host process
    (STATUS, HYBRID_CGROUP.replace(CID, "0" * 64), False),  # the init of another container
])
def test_cached_pid_is_trusted_only_while_it_is_that_containers_init(monkeypatch, status, cgroup, expected):
    fake_proc(monkeypatch, {"/proc/6119/status": status, "/proc/6119/cgroup": cgroup})
    assert plugin._is_init_of(6119, CID) is expected


def test_a_pid_that_is_gone_is_not_trusted(monkeypatch):
    fake_proc(monkeypatch, {})
    assert plugin._is_init_of(6119, CID) is False


@pytest.fixture
def conn(monkeypatch):
    """A stand-in container: a process in new mount, UTS, IPC, network, PID and cgroup namespaces (its own hostname,
    only a loopback interface, pid 1 inside), entered the way the plugin enters a podman container's init."""
    if os.geteuid() != 0 or subprocess.run(["nsenter", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs root and nsenter, as the test bed does")
    outer = subprocess.Popen(["unshare", "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--fork",
                              "--mount-proc", "sh", "-c", "hostname tm-unit-container && exec sleep 300"])
    inner = None
    for dummy in range(100):
        try:
            with open("/proc/%d/task/%d/children" % (outer.pid, outer.pid)) as f:
                inner = int(f.read().split()[0])
            with open("/proc/%d/comm" % inner) as f:
                if f.read().strip() == "sleep":
                    break
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.05)
    else:
        outer.kill()
        pytest.fail("the stand-in container did not start")
    monkeypatch.setenv("TALENTMESH_CONTROLLER_ONLY", "must not reach the container")
    connection_loader.add_directory(os.path.dirname(SPEC.origin))
    connection = connection_loader.get("podman_nsenter", PlayContext(), None)
    connection.set_options(direct={"remote_addr": "tm-unit-container"})
    connection._pid = inner
    connection._env = dict(plugin.DEFAULT_ENV, TERM="xterm", container="podman")
    connection._connected = True
    yield connection
    outer.kill()
    outer.wait()


def test_commands_run_in_the_containers_namespaces(conn):
    rc, out, err = conn.exec_command("hostname; echo $$; tail -n +3 /proc/net/dev | cut -d: -f1; cat /proc/1/comm")
    assert rc == 0, err
    hostname, pid, *rest = out.decode().split()
    # its UTS namespace, its PID namespace (pid 1 is the container's init), its network namespace (loopback only)
    assert (hostname, rest) == ("tm-unit-container", ["lo", "sleep"]) and int(pid) < 10


def test_commands_get_the_container_environment_and_root_as_working_directory(conn):
    rc, out, err = conn.exec_command("env; pwd")
    lines = out.decode().splitlines()
    assert rc == 0, err
    assert "container=podman" in lines and "HOME=/root" in lines and lines[-1] == "/"
    assert not any(line.startswith("TALENTMESH_CONTROLLER_ONLY=") for line in lines)


def test_pipelined_input_exit_status_and_stderr(conn):
    rc, out, err = conn.exec_command("cat; echo oops >&2; exit 3", in_data=b"module payload\n")
    assert (rc, out, err) == (3, b"module payload\n", b"oops\n")


def test_put_and_fetch_round_trip(conn, tmp_path):
    source, remote, back = tmp_path / "source", tmp_path / "remote with space", tmp_path / "back"
    payload = bytes(range(256)) * 64
    source.write_bytes(payload)
    conn.put_file(str(source), str(remote))
    conn.fetch_file(str(remote), str(back))
    assert remote.read_bytes() == payload and back.read_bytes() == payload


def test_transfer_errors_name_the_path(conn, tmp_path):
    with pytest.raises(AnsibleError, match="failed to read /nonexistent/file"):
        conn.fetch_file("/nonexistent/file", str(tmp_path / "x"))
    with pytest.raises(AnsibleError, match="failed to write /nonexistent/dir/file"):
        conn.put_file(__file__, "/nonexistent/dir/file")
