"""The hub's MLflow service: hub authentication only, runs from two users' kernels in PostgreSQL."""

from __future__ import annotations

import hashlib
import time

import requests

from .hubctl import proc_environ, sign_up_and_in, wait_for
from .kernel import run_in_kernel

LOG_RUN = """
import hashlib, os, tempfile, mlflow
mlflow.set_experiment("hub-shared")
blob = os.urandom(6 * 2**20)  # streamed through the auth proxy both ways
path = os.path.join(tempfile.mkdtemp(), "blob.bin")
with open(path, "wb") as fh:
    fh.write(blob)
with mlflow.start_run(run_name="from-" + os.environ["JUPYTERHUB_USER"]) as run:
    mlflow.log_param("who", os.environ["JUPYTERHUB_USER"])
    mlflow.log_metric("dice", 0.5 + len(os.environ["JUPYTERHUB_USER"]) / 100)
    mlflow.log_text("artifact of " + os.environ["JUPYTERHUB_USER"], "note.txt")
    mlflow.log_artifact(path)
back = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="blob.bin")
assert open(back, "rb").read() == blob
print("RUN", run.info.run_id, mlflow.get_tracking_uri(), hashlib.sha256(blob).hexdigest())
"""


def test_mlflow_behind_hub_auth_on_postgres(make_hub, postgres):
    hub = make_hub(gpus="none", mlflow=True, postgres=postgres)
    hub.create_users(["alice", "bob"])
    tokens = {u: hub.user_token(u) for u in ("alice", "bob")}
    for user in tokens:
        hub.start_server(user, token=tokens[user])
    envs = {u: proc_environ(int(hub.wait_ready(u)["state"]["pid"])) for u in tokens}
    uri = hub.settings.mlflow_uri
    for user, env in envs.items():
        assert env["MLFLOW_TRACKING_URI"] == uri
        assert env["MLFLOW_TRACKING_TOKEN"] == env["JUPYTERHUB_API_TOKEN"]
        assert env["MLFLOW_TRACKING_TOKEN"] != tokens[user]

    api = f"{uri}/api/2.0/mlflow/experiments/search?max_results=5"
    server_token = envs["alice"]["MLFLOW_TRACKING_TOKEN"]

    def answered() -> int | None:
        r = requests.get(api, headers={"Authorization": f"Bearer {server_token}"}, timeout=30)
        return r.status_code if r.status_code != 503 else None

    assert wait_for("the MLflow service", answered, 180, every=1.0) == 200
    # without hub authentication: 401 for programs, a redirect to the hub login for browsers
    bad = {"Authorization": "Bearer not-a-hub-token"}
    # refused requests, back to back: the hub's proxy keeps upstream connections alive, so a
    # refusal must say it closes its connection (once a 503 from a reused, closed socket)
    refused = [requests.get(api, headers=h, timeout=30).status_code for h in [{}, bad] * 15]
    assert refused == [401] * 30
    browser = requests.get(
        f"{uri}/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=30
    )
    assert browser.status_code == 302 and "/hub/api/oauth2/authorize" in browser.headers["Location"]
    # a valid hub token without the service scope
    r = hub.post("/users/bob/tokens", json={"scopes": ["read:users:name!user=bob"]})
    assert r.status_code == 201, r.text
    narrow = {"Authorization": f"Bearer {r.json()['token']}"}
    assert requests.get(api, headers=narrow, timeout=30).status_code == 403
    assert (
        requests.post(f"{uri}/api/2.0/mlflow/runs/create", json={}, timeout=30).status_code == 401
    )

    # a browser: hub login, then OAuth to the service; writes need same-origin fetch metadata
    web, _ = sign_up_and_in(hub, "carol")
    navigate = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
    page = web.get(f"{uri}/", headers=navigate, timeout=60)
    assert page.status_code == 200 and "<html" in page.text.lower(), page.status_code
    assert page.url.startswith(f"{uri}/")
    search = f"{uri}/ajax-api/2.0/mlflow/experiments/search"
    same_origin = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert web.post(search, json={"max_results": 5}, headers=same_origin).status_code == 200
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    assert web.post(search, json={"max_results": 5}, headers=cross_site).status_code == 401

    started = time.time()
    runs = {}
    for user in ("alice", "bob"):
        out = run_in_kernel(hub.url, user, tokens[user], LOG_RUN, timeout=240)
        line = next(x for x in out.splitlines() if x.startswith("RUN "))
        _, run_id, tracking_uri, sha = line.split()
        assert tracking_uri == uri
        runs[user] = run_id
        stored = next(hub.settings.artifacts.rglob(f"{run_id}/artifacts/blob.bin"))
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha

    import psycopg2

    conn = psycopg2.connect(postgres)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT r.run_uuid, r.user_id, r.status, r.artifact_uri, e.name FROM runs r "
            "JOIN experiments e ON e.experiment_id = r.experiment_id"
        )
        rows = {row[0]: row[1:] for row in cur.fetchall()}
        cur.execute("SELECT run_uuid, value FROM tags WHERE key = 'mlflow.user'")
        tag_users = dict(cur.fetchall())
        cur.execute("SELECT run_uuid, value FROM metrics WHERE key = 'dice'")
        metrics = dict(cur.fetchall())
    finally:
        conn.close()
    assert set(rows) == set(runs.values())
    for user, run_id in runs.items():
        owner, status, artifact_uri, experiment = rows[run_id]
        assert (owner, status, experiment) == (user, "FINISHED", "hub-shared")
        assert tag_users[run_id] == user  # set by the service from the hub identity
        assert abs(metrics[run_id] - (0.5 + len(user) / 100)) < 1e-9
        assert artifact_uri.startswith("mlflow-artifacts:")
    notes = sorted(p.read_text() for p in hub.settings.artifacts.rglob("note.txt"))
    assert notes == ["artifact of alice", "artifact of bob"]
    assert all(p.stat().st_mtime >= started - 5 for p in hub.settings.artifacts.rglob("note.txt"))
