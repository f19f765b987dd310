"""Auth.Mode accounts over real processes: the command line, signing in and out, API tokens,
two users who can't reach each other's things, and credentials that stop working at once."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from orchestrator.accounts.limiter import LoginLimiter, LoginRefused, WindowLimiter
from tests.engine_process import ROOT, TEAM, OrchestratorProcess, team_app
from tests.helpers import FAST, assert_error, png_bytes, start_training, wait_job

PASSWORDS = TEAM


@pytest.fixture(scope="module")
def team(tiny_models, tmp_path_factory):
    """An app in accounts mode with alice (admin) and bob, each with an API token."""
    proc = team_app(str(tiny_models["sd"].folder), tmp_path_factory.mktemp("team"))
    proc.tokens = {}
    for name in PASSWORDS:
        made = proc.cli("tokens", "create", name, "--label", "tests")
        assert made.returncode == 0, made.stderr
        proc.tokens[name] = made.stdout.strip().splitlines()[-1]  # alone on the last line
    proc.start_ready()
    yield proc
    proc.stop()


def as_user(team, name: str) -> httpx.Client:
    c = team.client()
    c.headers["authorization"] = f"Bearer {team.tokens[name]}"
    return c


@contextlib.contextmanager
def browser_login(team, name: str, password: str | None = None) -> Iterator[httpx.Client]:
    """A client signed in through the /login form, holding its session cookie."""
    with team.client() as c:
        yield _signed_in(c, name, password or PASSWORDS[name])


def _signed_in(c: httpx.Client, name: str, password: str) -> httpx.Client:
    r = c.post(
        "/login",
        data={"username": name, "password": password, "next": "/my-loras"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/my-loras", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    return c


def test_the_command_line_manages_users(team):
    listed = team.cli("users", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [
        ["alice", "admin", "enabled"],
        ["bob", "user", "enabled"],
    ]
    assert team.tokens["alice"].startswith("lmt_") and len(team.tokens["alice"]) > 40
    dup = team.cli("users", "add", "bob", stdin="another-password\n")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    weak = team.cli("users", "add", "dora", stdin="short\n")
    assert weak.returncode == 1 and "8 to 1024 characters" in weak.stderr
    assert team.cli("users", "disable", "nobody").returncode == 1


def test_without_credentials_the_api_says_401_and_pages_send_you_to_sign_in(team):
    with team.client() as c:
        err = assert_error(c.get("/loras"), 401, "not_authenticated")
        assert "/login" in err["message"] and "Bearer" in err["message"]
        assert c.get("/loras").headers["www-authenticate"] == "Bearer"
        c.headers["authorization"] = "Bearer lmt_not-a-real-token"
        assert_error(c.post("/generate", json={"prompt": "x"}), 401, "not_authenticated")
        del c.headers["authorization"]
        r = c.get("/my-images", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/my-images"
        page = c.get("/login?next=/my-images")
        assert page.status_code == 200 and 'name="password"' in page.text


def test_a_wrong_password_is_refused_and_the_right_one_signs_in_and_out(team):
    with team.client() as c:
        r = c.post("/login", data={"username": "bob", "password": "wrong-password"})
        assert r.status_code == 401 and "Wrong user name or password" in r.text
        r = c.post("/login", data={"username": "nobody", "password": "wrong-password"})
        assert r.status_code == 401 and "Wrong user name or password" in r.text
    with browser_login(team, "bob") as c:
        assert c.get("/account/me").json() == {"name": "bob", "is_admin": False}
        assert "bob" in c.get("/generate").text
        session = c.cookies["loramint_session"]
        assert c.post("/logout", follow_redirects=False).headers["location"] == "/login"
        # The old cookie, replayed, no longer works: the session ended on the server.
        c.cookies.set("loramint_session", session)
        assert_error(c.get("/account/me"), 401, "not_authenticated")


def test_open_redirects_after_sign_in_are_refused(team):
    with team.client() as c:
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
            r = c.post(
                "/login",
                data={**{"username": "bob", "password": PASSWORDS["bob"]}, "next": target},
                follow_redirects=False,
            )
            assert r.headers["location"] == "/generate", target


def test_two_users_cannot_reach_each_others_things(team):
    with as_user(team, "alice") as alice:
        image = alice.post("/generate", json={"prompt": "alice's", **FAST}).json()["images"][0]
        lora = team.data_dir / "loras" / "alice" / "alices.safetensors"
        job = start_training(
            alice,
            [png_bytes((200, 0, 0))],
            params={},
            name="alices",
            steps="3",
            prior_preservation="false",
        )
        assert wait_job(alice, job["job_id"], params={})["status"] == "succeeded"
        made = alice.post("/generate?async=true", json={"prompt": "alice's job", **FAST})
        generated = wait_job(alice, made.json()["job_id"], params={})
        running = start_training(
            alice,
            [png_bytes((0, 0, 200))],
            params={},
            name="long",
            steps="5000",
            prior_preservation="false",
        )
    before = {p: p.read_bytes() for p in (lora, team.data_dir / "outputs/alice" / image["file"])}
    for signed_in in (lambda: as_user(team, "bob"), lambda: browser_login(team, "bob")):
        with signed_in() as bob:
            assert bob.get("/loras").json()["loras"] == []
            assert bob.get("/images").json()["images"] == []
            assert bob.get("/images", params={"q": "alice"}).json()["images"] == []
            assert bob.get("/jobs").json()["jobs"] == []
            for method, url in (
                ("GET", f"/images/{image['file']}"),
                ("DELETE", f"/images/{image['file']}"),
                ("GET", "/loras/alices.safetensors"),
                ("DELETE", "/loras/alices.safetensors"),
                ("GET", f"/jobs/{job['job_id']}"),
                ("GET", f"/jobs/{running['job_id']}/events"),
                ("POST", f"/jobs/{running['job_id']}/cancel"),
                ("GET", f"/jobs/{generated['id']}"),
                ("POST", f"/jobs/{generated['id']}/cancel"),
                ("PATCH", "/loras/alices.safetensors"),
            ):
                body = {"json": {"description": "bob was here"}} if method == "PATCH" else {}
                assert_error(bob.request(method, url, **body), 404, "not_found")
                assert_error(
                    bob.request(method, url, params={"user_id": "alice"}, **body), 403, "forbidden"
                )
            use = {"prompt": "x", **FAST, "loras": [{"file": "alices.safetensors"}]}
            assert_error(bob.post("/generate", json=use), 404, "not_found")
    assert all(p.read_bytes() == data for p, data in before.items())
    with as_user(team, "alice") as alice:
        assert alice.get(f"/jobs/{running['job_id']}").json()["status"] == "running"
        assert alice.post(f"/jobs/{running['job_id']}/cancel").status_code == 200
        assert [lo["file"] for lo in alice.get("/loras").json()["loras"]] == ["alices.safetensors"]


def test_a_revoked_token_stops_at_once(team):
    with as_user(team, "bob") as bob:
        made = bob.post("/account/tokens", json={"label": "throwaway"})
        assert made.status_code == 201
        token = made.json()["token"]
        listed = bob.get("/account/tokens").json()["tokens"]
        assert "token" not in listed[0] and made.json()["id"] in [t["id"] for t in listed]
    with team.client() as c:
        c.headers["authorization"] = f"Bearer {token}"
        assert c.get("/loras").status_code == 200
        assert c.delete(f"/account/tokens/{made.json()['id']}").json()["revoked"]
        assert_error(c.get("/loras"), 401, "not_authenticated")
    with as_user(team, "alice") as alice:  # someone else's token id reads as unknown
        assert_error(alice.delete(f"/account/tokens/{made.json()['id']}"), 404, "not_found")


def test_a_disabled_user_is_refused_at_once_and_can_come_back(team):
    with (
        as_user(team, "alice") as admin,
        as_user(team, "bob") as bob,
        browser_login(team, "bob") as cookie,
    ):
        assert admin.patch("/admin/users/bob", json={"disabled": True}).json()["disabled"]
        assert_error(bob.get("/loras"), 401, "not_authenticated")
        assert_error(cookie.get("/loras"), 401, "not_authenticated")
        r = cookie.post("/login", data={"username": "bob", "password": PASSWORDS["bob"]})
        assert r.status_code == 401
        assert not admin.patch("/admin/users/bob", json={"disabled": False}).json()["disabled"]
        assert bob.get("/loras").status_code == 200
        assert_error(admin.patch("/admin/users/alice", json={"disabled": True}), 409, "conflict")


def test_a_new_password_ends_every_other_session(team):
    with browser_login(team, "bob") as first, browser_login(team, "bob") as second:
        new = "bob-new-password"
        wrong = {"current_password": "not-it", "new_password": new}
        assert_error(first.post("/account/password", json=wrong), 422, "wrong_password")
        change = {"current_password": PASSWORDS["bob"], "new_password": new}
        assert first.post("/account/password", json=change).status_code == 200
        assert first.get("/account/me").status_code == 200  # this browser got a new session
        assert_error(second.get("/account/me"), 401, "not_authenticated")
    with team.client() as c:
        old = c.post("/login", data={"username": "bob", "password": PASSWORDS["bob"]})
        assert old.status_code == 401
    with browser_login(team, "bob", new):
        pass
    assert team.cli("users", "passwd", "bob", stdin=PASSWORDS["bob"] + "\n").returncode == 0


def test_tokens_survive_a_new_password_until_revoked_all_at_once(team):
    assert team.cli("users", "add", "tess", stdin="tess-password\n").returncode == 0
    with browser_login(team, "tess", "tess-password") as c:
        tokens = [c.post("/account/tokens", json={"label": f"t{i}"}).json() for i in range(2)]
        change = {"current_password": "tess-password", "new_password": "tess-password-2"}
        assert c.post("/account/password", json=change).status_code == 200
        for t in tokens:  # as the page says: a new password leaves them working
            with team.client() as script:
                script.headers["authorization"] = f"Bearer {t['token']}"
                assert script.get("/account/me").json()["name"] == "tess"
        listed = c.post("/account/tokens/revoke-all").json()["tokens"]
        assert len(listed) == 2 and all(t["revoked"] for t in listed)
        for t in tokens:
            with team.client() as script:
                script.headers["authorization"] = f"Bearer {t['token']}"
                assert_error(script.get("/account/me"), 401, "not_authenticated")
        page = c.get("/account").text
        assert "not your API tokens" in page and "Revoke all tokens" in page
    with as_user(team, "bob") as bob:  # another user's tokens are untouched
        assert bob.get("/account/me").status_code == 200


def test_admins_manage_users_and_see_their_storage(team):
    with as_user(team, "bob") as bob:
        assert_error(bob.get("/admin/users"), 403, "forbidden")
        page = bob.get("/admin")
        assert page.status_code == 403 and "only admins manage users" in page.text
    with as_user(team, "alice") as admin:
        assert admin.post("/generate", json={"prompt": "counted", **FAST}).status_code == 200
        users = {u["name"]: u for u in admin.get("/admin/users").json()["users"]}
        on_disk = {
            kind: list((team.data_dir / folder / "alice").glob(f"*.{ext}"))
            for kind, folder, ext in (
                ("images", "outputs", "png"),
                ("loras", "loras", "safetensors"),
            )
        }
        usage = users["alice"]["usage"]
        for kind, files in on_disk.items():
            assert usage[kind] == len(files) >= (1 if kind == "images" else 0)
            assert usage[f"{kind}_bytes"] == sum(f.stat().st_size for f in files)
        assert users["bob"]["usage"] == {
            "loras": 0,
            "loras_bytes": 0,
            "images": 0,
            "images_bytes": 0,
            "training": 0,
            "training_bytes": 0,
        }
        added = admin.post("/admin/users", json={"name": "carol", "password": "carol-password"})
        assert added.status_code == 201 and added.json()["is_admin"] is False
        assert_error(admin.post("/admin/users", json={"name": "carol", "password": "x" * 9}), 409)
        assert_error(admin.post("/admin/users", json={"name": "../x", "password": "x" * 9}), 422)
        assert admin.get("/admin").status_code == 200
    with browser_login(team, "carol", "carol-password") as carol:
        assert carol.get("/loras").json()["loras"] == []


def test_a_signed_in_browser_is_still_guarded_against_other_websites(team):
    with browser_login(team, "bob") as c:
        r = c.post(
            "/generate", json={"prompt": "x", **FAST}, headers={"origin": "https://evil.example"}
        )
        assert_error(r, 403, "cross_site_request")
        r = c.post("/logout", headers={"sec-fetch-site": "cross-site"})
        assert_error(r, 403, "cross_site_request")
        assert c.get("/account/me").status_code == 200


def test_the_login_limiter_counts_per_key_inside_its_window():
    now = [1000.0]
    limiter = WindowLimiter(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("user:bob") is None
        limiter.record("user:bob", "client:a")
    assert limiter.retry_after("user:bob") == 60
    assert limiter.retry_after("user:carol", "client:a") == 60  # the client's count, too
    assert limiter.retry_after("user:carol", "client:b") is None
    now[0] += 59.5
    assert limiter.retry_after("user:bob") == 1
    now[0] += 0.5
    assert limiter.retry_after("user:bob", "client:a") is None and not limiter._events


def _try(limiter: LoginLimiter, user: str, client: str, right: bool = False) -> int:
    try:
        with limiter.attempt(user, client) as succeeded:
            if right:
                succeeded()
    except LoginRefused as refused:
        return refused.retry_after
    return 0


def test_sign_ins_are_limited_per_user_and_client_with_looser_ceilings():
    now = [0.0]
    limiter = LoginLimiter(2, 5, 4, 60, clock=lambda: now[0])
    assert [_try(limiter, "Alice", "a") for _ in range(3)] == [0, 0, 60]
    assert _try(limiter, "alice", "b", right=True) == 0  # another place still signs in
    assert _try(limiter, "alice", "b", right=True) == 0  # and a right password counts nothing
    for client in ("c", "c", "d"):
        assert _try(limiter, "alice", client) == 0
    assert _try(limiter, "alice", "e", right=True) == 60  # five failures: the name's ceiling
    for name in ("u1", "u2", "u3", "u4"):
        _try(limiter, name, "f")
    assert _try(limiter, "bob", "f", right=True) == 60  # one address, many names
    now[0] += 60
    assert _try(limiter, "alice", "a", right=True) == 0


def test_one_check_at_a_time_per_user_and_client():
    limiter = LoginLimiter(5, 50, 20, 60)
    with limiter.attempt("alice", "a"):
        assert _try(limiter, "alice", "a") == 1  # in flight: refused before any check
        assert _try(limiter, "alice", "b") == 0
    assert _try(limiter, "alice", "a") == 0


def _login_from(app: OrchestratorProcess, address: str, name: str, password: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=app.url, transport=transport) as c:
        return c.post("/login", data={"username": name, "password": password})


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """An app with no engine (none is needed to sign in) and low limits; clients differ by
    loopback address."""
    app = team_app(
        "unused",
        tmp_path_factory.mktemp("guarded"),
        LORAMINT_ENGINE__AUTOSTART="false",
        LORAMINT_AUTH__MAXFAILEDLOGINS="3",
        LORAMINT_AUTH__MAXFAILEDLOGINSPERCLIENT="3",
    )
    app.start(lambda h: "engine" in h, timeout=60)
    yield app
    app.stop()


def test_repeated_failed_logins_are_refused_per_user_and_client(guarded):
    for _ in range(3):  # guessing alice's password from one place locks that place...
        assert _login_from(guarded, "127.0.0.2", "alice", "guess-guess").status_code == 401
    r = _login_from(guarded, "127.0.0.2", "alice", PASSWORDS["alice"])
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 15 * 60
    assert "Too many failed sign-ins" in r.text
    assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS
    # ...not alice herself, elsewhere.
    assert _login_from(guarded, "127.0.0.3", "alice", PASSWORDS["alice"]).status_code == 303
    for name in ("u1", "u2", "u3"):  # many names from one client locks that client
        assert _login_from(guarded, "127.0.0.4", name, "guess-guess").status_code == 401
    assert _login_from(guarded, "127.0.0.4", "bob", PASSWORDS["bob"]).status_code == 429
    assert _login_from(guarded, "127.0.0.5", "bob", PASSWORDS["bob"]).status_code == 303


def test_parallel_guesses_are_counted_before_they_are_checked(guarded):
    """40 wrong passwords at once were all checked (40 x 401) against a limit of 5."""
    with ThreadPoolExecutor(40) as pool:
        codes = list(
            pool.map(
                lambda _: _login_from(guarded, "127.0.0.6", "bob", "guess-guess").status_code,
                range(40),
            )
        )
    assert codes.count(401) <= 3 and codes.count(429) >= 37, codes


def test_a_forwarded_for_header_does_not_make_a_new_client(guarded):
    """uvicorn believed X-Forwarded-For from 127.0.0.1, so each guess could name a new
    client; without Server.TrustForwardedFor the header is ignored."""
    transport = httpx.HTTPTransport(local_address="127.0.0.1")
    with httpx.Client(base_url=guarded.url, transport=transport) as c:
        codes = [
            c.post(
                "/login",
                data={"username": f"n{i}", "password": "guess-guess"},
                headers={"x-forwarded-for": f"198.51.100.{i}"},
            ).status_code
            for i in range(5)
        ]
    assert codes == [401, 401, 401, 429, 429]


def test_without_accounts_it_refuses_to_listen_beyond_this_machine(tmp_path):
    app = OrchestratorProcess("unused", tmp_path, LORAMINT_SERVER__HOST="0.0.0.0")
    run = app.cli()  # no arguments: serve
    assert run.returncode != 0
    assert "0.0.0.0" in run.stderr and "LORAMINT_AUTH__MODE=accounts" in run.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_over_https_the_session_cookie_is_secure(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    app = team_app(
        "unused",
        tmp_path,
        LORAMINT_ENGINE__AUTOSTART="false",
        LORAMINT_SERVER__CERTFILE=str(cert),
        LORAMINT_SERVER__KEYFILE=str(key),
    )
    app.url = app.url.replace("http://", "https://")
    app.headers = {}
    with app.log_path.open("ab") as log:
        app.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator"], cwd=ROOT, env=app.env, stdout=log, stderr=log
        )
    try:
        with httpx.Client(base_url=app.url, verify=False, timeout=10) as c:
            wait_until_up = time.monotonic() + 60
            while True:
                try:
                    c.get("/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < wait_until_up, app.log_tail()
                    time.sleep(0.2)
            r = c.post("/login", data={"username": "bob", "password": PASSWORDS["bob"]})
            assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
            assert r.headers["strict-transport-security"] == "max-age=31536000"
        assert "https://127.0.0.1" in app.log_path.read_text()
    finally:
        app.stop()


def test_the_limiter_forgets_keys_it_will_not_see_again():
    now = [0.0]
    limiter = WindowLimiter(3, 60, clock=lambda: now[0])
    for i in range(5000):  # a public preview: many visitors, each once
        limiter.record(f"client:{i}")
    now[0] += 61
    limiter.record("client:new")
    assert list(limiter._events) == ["client:new"]
    assert limiter.retry_after("client:new") is None
