"""The Lab's challenge endpoints outside a hub: clear refusals, paths confined to the root."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER", "MEDAI_CHALLENGE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("endpoint", ["info", "submissions", "leaderboard"])
async def test_outside_a_hub_every_call_says_how_to_submit_instead(raw_fetch, no_hub, endpoint):
    r = await raw_fetch(f"challenge/{endpoint}")
    assert r.code == 409
    message = json.loads(r.body)["message"]
    assert "JupyterHub" in message and "medai-lab challenge submit DIR PATH" in message


async def test_submit_refuses_paths_outside_the_root_before_anything_else(
    raw_fetch, no_hub, jp_root_dir
):
    (jp_root_dir / "preds").mkdir()
    for path, code in (("../etc", 403), ("/etc/passwd", 403), ("missing", 404), ("preds", 409)):
        r = await raw_fetch("challenge/submissions", method="POST", body=json.dumps({"path": path}))
        assert r.code == code, (path, r.body)
    for body in ("not json", json.dumps({"path": 3}), json.dumps({"path": "preds", "phase": 1})):
        r = await raw_fetch("challenge/submissions", method="POST", body=body)
        assert r.code == 400, body


async def test_the_endpoints_need_the_servers_authentication(raw_fetch, no_hub):
    r = await raw_fetch("challenge/info", token=False)
    assert r.code in (401, 403)
