"""CPU/memory policy: per-server, per-group and per-user shares, machine defaults, Kubernetes."""

from __future__ import annotations

import argparse

import pytest

from medai_lab.errors import MedaiError
from medai_lab.hub import limits
from medai_lab.hub.command import add_parser, settings_from_args
from medai_lab.hub.resources import (
    ResourceError,
    ResourcePolicy,
    Share,
    default_policy,
    kube_override,
    machine,
    parse_size,
    share_env,
)


def test_parse_size():
    assert parse_size("4G") == 4 * 1024**3 and parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert parse_size("512M") == 512 * 1024**2 and parse_size("1000") == 1000
    with pytest.raises(ResourceError, match="not a memory size"):
        parse_size("lots")


def test_group_share_wins_and_user_cap_shrinks_then_refuses():
    policy = ResourcePolicy(
        cpus_per_server=1, memory_per_server=parse_size("2G"), max_cpus_per_user=3,
        group_cpus={"staff": 4, "tutors": 2}, group_memory={"staff": parse_size("8G")},
    )  # fmt: skip
    assert policy.share_for(["students"]) == Share(1, parse_size("2G"))
    assert policy.share_for(["tutors", "staff"]) == Share(3, parse_size("8G"))  # capped at 3
    assert policy.share_for(["staff"], held=Share(2.5, 0)).cpus == 0.5
    with pytest.raises(ResourceError, match="already use your 3 CPU"):
        policy.share_for([], held=Share(3, 0))
    assert ResourcePolicy.from_dict(policy.to_dict()) == policy


def test_default_policy_splits_the_machine():
    cpus, memory = machine()
    policy = default_policy(4)
    assert policy.cpus_per_server == max(0.1, int(cpus / 4 * 20) / 20)
    assert 0 < policy.memory_per_server * 4 <= memory
    assert default_policy(1000, cpus=2, memory=8 * 1024**3).cpus_per_server == 0.1
    with pytest.raises(ResourceError):
        default_policy(0)


def test_threads_follow_cpu_limit_for_any_spawner():
    env = share_env(2.5, parse_size("4G"))
    assert env["OMP_NUM_THREADS"] == env["MEDAI_CPUS"] == env["NUMEXPR_MAX_THREADS"] == "3"
    assert env["MEDAI_MEMORY_LIMIT"] == str(parse_size("4G"))
    assert share_env(None, None) == {}
    kube = kube_override(Share(4, parse_size("16G")))
    assert kube["cpu_limit"] == 4 and kube["cpu_guarantee"] == 2
    assert kube["mem_limit"] == parse_size("16G")
    assert kube["environment"]["OPENBLAS_NUM_THREADS"] == "4"


def test_cores_are_spread_over_servers():
    allowed = [0, 1, 2, 3]
    picks = [limits.pick_cores(f"t-spread-{i}", 2, allowed) for i in range(3)]
    try:
        assert set(picks[0]).isdisjoint(picks[1]) and len(picks[2]) == 2
        assert limits.pick_cores("t-spread-all", 4, allowed) == ()  # the whole machine: no pin
    finally:
        for i in range(3):
            limits.release(limits.Placement(f"t-spread-{i}", "none"))


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["hub", "--gpus", "none", *argv])


def test_command_flags(tmp_path):
    s = settings_from_args(_args("--data", str(tmp_path), "--cpus-per-server", "0.5",
                                 "--mem-per-server", "1G", "--group-cpus", "staff=2",
                                 "--limits", "none"))  # fmt: skip
    policy = ResourcePolicy.from_dict(s.resources)
    assert policy.cpus_per_server == 0.5 and policy.memory_per_server == 1024**3
    assert policy.group_cpus == {"staff": 2.0} and s.limits == "none"
    auto = settings_from_args(_args("--data", str(tmp_path), "--expected-users", "2"))
    assert ResourcePolicy.from_dict(auto.resources) == default_policy(2)
    assert auto.limits == limits.detect("auto")
    off = settings_from_args(_args("--data", str(tmp_path), "--cpus-per-server", "0",
                                   "--mem-per-server", "0"))  # fmt: skip
    assert not ResourcePolicy.from_dict(off.resources).active
    with pytest.raises(MedaiError, match="not a memory size"):
        settings_from_args(_args("--data", str(tmp_path), "--mem-per-server", "big"))


def test_print_kube_override(capsys):
    import yaml

    from medai_lab.cli import main

    argv = ["hub", "--print-kube-override", "--cpus-per-server", "4", "--mem-per-server", "16G"]
    assert main(argv) == 0
    override = yaml.safe_load(capsys.readouterr().out)["kubespawner_override"]
    assert override["cpu_limit"] == 4 and override["cpu_guarantee"] == 2
    assert override["mem_limit"] == 16 * 1024**3
    assert override["environment"]["OMP_NUM_THREADS"] == "4"
