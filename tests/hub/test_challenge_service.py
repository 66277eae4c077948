"""Hackathon submissions without access to the challenge folder, through a real JupyterHub.

The hub runs as root (the evaluator's account) with ``challenge_dir`` set; every server runs as
an unprivileged second account (``--run-as``) with the full JupyterLab server and the MedAI
Lab extension. alice submits from her Lab (server extension -> hub service, with her server's
own token), bob from a terminal client with his token. Each sees only their own submissions;
neither the servers' account nor anonymous callers get at the folder or the database; the
organiser's evaluator (the Python API, as root) scores both.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import nibabel as nib
import numpy as np
import pytest
import requests

from medai_lab.challenge import Challenge
from medai_lab.challenge.service.client import Client, ServiceError, status_lines
from medai_lab.cli import main
from medai_lab.datasets import write_phantom_dataset
from medai_lab.hub.config import server_cmd
from medai_lab.hub.preflight import account_problems, hub_needs
from medai_lab.hub.settings import HubSettings

from .hubctl import wait_for
from .kernel import run_in_kernel
from .test_workshop import let_through

SHAPE, SPACING = (48, 48, 32), (3.0, 3.0, 5.0)
PEEK = """
import os, sqlite3
for what, act in (("folder", lambda: os.listdir({root!r})),
                  ("database", lambda: open({db!r}, "rb").read(1))):
    try:
        act()
        print("READ", what)
    except PermissionError:
        print("REFUSED", what)
"""


@contextlib.contextmanager
def account_can_run_servers(account: str, data: Path) -> Iterator[None]:
    """Let ``account`` through the folders the hub's start-up check names (restored after)."""
    settings = HubSettings(data_dir=str(data), run_as=account)
    with contextlib.ExitStack() as granted:
        for _ in range(5):
            needs = hub_needs(settings.data, server_cmd(settings))
            blocked = [p.blocked for p in account_problems(account, needs)]
            if not blocked:
                break
            granted.enter_context(let_through(blocked))
        yield


@pytest.fixture
def challenge(reachable_base: Path) -> Challenge:
    """A liver challenge on phantoms: a visible validation phase and a hidden test phase."""
    data = {}
    for name, seed in (("validation", 0), ("test", 100)):
        data[name] = write_phantom_dataset(
            reachable_base / "data" / name, "liver", 2, seed=seed, shape=SHAPE, spacing=SPACING,
            progress=False,
        )  # fmt: skip
    spec = {
        "name": "liver-hub",
        "task": "liver",
        "metrics": {"ranking": ["dice"], "bootstrap": 50},
        "limits": {"time_per_case_s": 10, "submissions_per_day": 3, "submission_mb": 4},
        "phases": {
            "validation": {"hidden": False, "data": str(data["validation"])},
            "test": {"hidden": True, "data": str(data["test"])},
        },
    }
    root = reachable_base / "challenge"
    ch = Challenge.create(root, spec)
    os.chmod(root, 0o755)  # as an organiser might leave it: the service must lock it down
    os.chmod(root / "challenge.db", 0o644)
    return ch


def predictions(labels: Path, out: Path, *, empty: bool) -> Path:
    """A predictions submission: the true labels, or all-background maps of the same grids."""
    out.mkdir(parents=True)
    for f in sorted(labels.glob("*.nii.gz")):
        img = nib.load(f)
        data = np.zeros(img.shape, np.uint8) if empty else np.asarray(img.dataobj, np.uint8)
        nib.save(nib.Nifti1Image(data, img.affine), out / f.name)
    return out


def test_two_users_submit_through_the_hub_service(
    make_hub, second_account, reachable_base, challenge, tmp_path, monkeypatch, capsys
):
    ch, root = challenge, challenge.root
    data = reachable_base / "hub"
    with account_can_run_servers(second_account, data):
        hub = make_hub(
            data_dir=str(data), run_as=second_account, allow_root=False,
            challenge_dir=str(root), challenge_workers=0,
            server_env={},  # the whole JupyterLab server, MedAI Lab extension included
        )  # fmt: skip
        hub.create_users(["alice", "bob"])
        tokens = {u: hub.user_token(u) for u in ("alice", "bob")}
        service = f"{hub.url}/services/challenge/api"

        # the service locked the folder down as it started
        def private() -> bool:
            return stat.S_IMODE(root.stat().st_mode) == 0o700

        wait_for("the challenge folder to be made private", private, 60)
        assert stat.S_IMODE((root / "challenge.db").stat().st_mode) == 0o600
        bob = Client.from_hub(hub.url, token=tokens["bob"])
        wait_for("the challenge service", lambda: _answers(bob), 60)

        # anonymous and bad tokens: 401, also back to back through the hub's proxy
        bad = {"Authorization": "token not-a-hub-token"}
        refused = [
            requests.request(m, f"{service}/submissions", headers=h, data=b"x" * 1000, timeout=30)
            for m in ("GET", "POST") for h in ({}, bad) for _ in range(3)
        ]  # fmt: skip
        assert [r.status_code for r in refused] == [401] * 12
        assert all("JUPYTERHUB_API_TOKEN" in r.json()["message"] for r in refused)
        r = hub.post("/users/bob/tokens", json={"scopes": ["read:users:name!user=bob"]})
        assert r.status_code == 201, r.text
        narrow = {"Authorization": f"token {r.json()['token']}"}  # a hub token, not for this
        assert requests.get(f"{service}/submissions", headers=narrow, timeout=30).status_code == 403
        admin = {"Authorization": f"token {hub.token}"}  # a hub service is not a team
        assert requests.get(f"{service}/submissions", headers=admin, timeout=30).status_code == 403

        # alice, from her JupyterLab: the file is in her server's folder, the token is its own
        hub.start_server("alice", token=tokens["alice"])
        hub.wait_ready("alice")
        home = data / "homes" / "alice"
        labels = ch.spec.phase("validation").labels
        predictions(labels, home / "preds", empty=False)
        for p in [home / "preds", *(home / "preds").iterdir()]:
            shutil.chown(p, user=second_account)
        lab = f"{hub.url}/user/alice/medai-lab/api/challenge"
        auth = {"Authorization": f"token {tokens['alice']}"}
        r = requests.post(
            f"{lab}/submissions", json={"path": "preds", "phase": "validation"},
            headers=auth, timeout=120,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        mine = r.json()
        assert (mine["team"], mine["status"], mine["phase"]) == ("alice", "queued", "validation")
        info = requests.get(f"{lab}/info", headers=auth, timeout=30).json()
        assert info["team"] == "alice" and info["service"].endswith("/services/challenge")
        outside = requests.post(
            f"{lab}/submissions", json={"path": "../../"}, headers=auth, timeout=30
        )
        assert outside.status_code == 403, outside.text

        # bob, from a terminal, with his own token
        zeros = predictions(labels, tmp_path / "zeros", empty=True)
        with monkeypatch.context() as env:  # as in a terminal of bob's server
            env.setenv("JUPYTERHUB_API_TOKEN", tokens["bob"])
            capsys.readouterr()
            args = ["challenge", "submit", "--hub", hub.url, str(zeros), "--phase", "validation"]
            assert main(args) == 0  # `medai-lab challenge submit --hub` in bob's terminal
            said = capsys.readouterr().out.strip()
        assert said.startswith("submission ") and "team bob" in said and said.endswith("queued")
        (theirs,) = bob.status()
        assert theirs["team"] == "bob" and theirs["id"] != mine["id"]
        big = tmp_path / "big"
        big.mkdir()
        (big / "predict.py").write_bytes(os.urandom(6 * 2**20))  # over the 4 MiB of the spec
        with pytest.raises(ServiceError, match="the limit is 4 MiB"):
            bob.submit(big, phase="validation")
        direct = f"http://127.0.0.1:{hub.settings.challenge_service_port}"
        assert _refusals(direct, tokens["bob"]) == {"too big": 413, "not a zip": 400}
        with pytest.raises(ServiceError) as err:
            bob.result(mine["id"])
        assert err.value.status == 404 and "alice" not in str(err.value)
        with pytest.raises(ServiceError) as missing:
            bob.result(10_000)
        assert str(missing.value) == str(err.value).replace(str(mine["id"]), "10000")
        seen = requests.get(f"{lab}/submissions", headers=auth, timeout=30).json()
        assert [s["id"] for s in seen] == [mine["id"]]

        # the servers' account cannot read the folder or the database
        code = PEEK.format(root=str(root), db=str(root / "challenge.db"))
        out = run_in_kernel(hub.url, "alice", tokens["alice"], code, timeout=120)
        assert "REFUSED folder" in out and "REFUSED database" in out, out

        # the organiser's evaluator (this process: the hub's account) scores both
        done = Challenge.open(root).evaluate(track=False)
        assert sorted(d["id"] for d in done) == sorted([mine["id"], theirs["id"]])
        seen = requests.get(f"{lab}/submissions", headers=auth, timeout=30).json()
        (scored,) = seen
        assert scored["status"] == "scored" and scored["score"]["n_failed"] == 0
        assert {c["case"] for c in scored["cases"]} == {
            f.name.removesuffix(".nii.gz") for f in labels.glob("*.nii.gz")
        }  # the visible phase shows a team its own cases
        board = requests.get(
            f"{lab}/leaderboard", params={"phase": "validation"}, headers=auth, timeout=60
        ).json()
        ranked = [row["team"] for row in sorted(board["rows"], key=lambda x: x["rank"])]
        assert ranked == ["alice", "bob"]  # the true labels beat empty masks
        hidden = requests.get(
            f"{lab}/leaderboard", params={"phase": "test"}, headers=auth, timeout=60
        ).json()
        assert (hidden["phase"], hidden["hidden"], hidden["rows"]) == ("test", True, [])
        assert bob.result(theirs["id"])["score"]["dice_mean"] < scored["score"]["dice_mean"]
        (line,) = status_lines(hub.url, token=tokens["bob"])  # the terminal's view
        assert line.startswith(f"submission {theirs['id']} (bob, validation") and "Dice" in line
        hub.stop_server("alice")
        _, code = hub.terminate()  # the service stops with the hub
        assert code == 0, hub.log_tail()


def _answers(client: Client) -> bool:
    try:
        return client.info()["team"] == "bob"
    except ServiceError as exc:
        if exc.status in (0, 502, 503, 404):
            return False
        raise


def test_hub_command_checks_the_folder_and_grants_the_service(challenge, tmp_path, capsys):
    from traitlets.config import Config

    from medai_lab.cli import main
    from medai_lab.hub.config import apply

    argv = ["hub", "--data", str(tmp_path / "hub"), "--gpus", "none", "--print-config"]
    argv += ["--allow-root"] if os.geteuid() == 0 else []
    assert main([*argv, "--challenge", str(tmp_path)]) == 2
    assert "not a challenge folder" in capsys.readouterr().err
    assert main([*argv, "--challenge", str(challenge.root), "--challenge-workers", "3"]) == 0
    said = capsys.readouterr()
    assert "/services/challenge" in said.out
    assert "participants can read the challenge folder" in said.err  # no --run-as here
    c = Config()
    apply(c, HubSettings.load(tmp_path / "hub" / "medai_hub.json"))
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "challenge"]
    command = service["command"]
    assert command[command.index("--dir") + 1] == str(challenge.root)
    assert command[command.index("evaluate") + 1] == str(challenge.root)
    assert command[command.index("--workers") + 1] == "3"
    scope = "access:services!service=challenge"
    assert scope in c.Spawner.server_token_scopes  # the Lab's server extension forwards with it
    (user_role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    assert scope in user_role["scopes"]  # users' own tokens (a terminal elsewhere)


def _refusals(service_url: str, token: str) -> dict[str, int]:
    """Uploads the service refuses: announced over the size cap (answered before the body is
    sent; under tornado's own 100 MB cap, which cuts the connection), and a body that is not a
    zip archive. Sent to the service's own address: through the hub's proxy, an answer given
    before a body that never comes did not arrive here (the client checks the size first)."""
    host, port = urlsplit(service_url).hostname, urlsplit(service_url).port
    path = "/services/challenge/api/submissions?phase=validation"
    out = {}
    for what, size, body in (("too big", 50 * 2**20, b""), ("not a zip", 5, b"hello")):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.putrequest("POST", path)
            conn.putheader("Authorization", f"token {token}")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            if body:
                conn.send(body)
            out[what] = conn.getresponse().status
        finally:
            conn.close()
    return out
