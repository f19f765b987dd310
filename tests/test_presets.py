"""Training presets (#30): `preset` sets the defaults of a run for what is taught, GET /presets
says which and why, and a job records its preset and what was set otherwise. On tiny real
engines over HTTP (their pictures are small: the "small" model group, as the demo model's)."""

from __future__ import annotations

import pytest
from safetensors import safe_open

from engine.contract.presets import PRESET_NAMES
from engine.training.defaults import preset_list
from tests.helpers import ALICE, assert_error, encoded, start_training, wait_job
from tests.test_masked_training import picture

# Both tiny families are small models: one of them answers for the group.
SMALL_ENGINE = pytest.mark.parametrize("engine", ["sd"], indirect=True)


def values(group: str, images: int = 3, masked: bool = False) -> dict[str, dict]:
    listed = preset_list(group, images, masked).presets
    return {p.name: {k: s.value for k, s in p.settings.items()} for p in listed}


def test_each_group_has_every_preset_and_each_change_says_why():
    for group in ("small", "sd", "sdxl"):
        listed = preset_list(group, 3, False).presets
        assert [p.name for p in listed] == list(PRESET_NAMES)
        for p in listed:
            assert p.use_for and all(s.why for s in p.settings.values())
        v = values(group)
        assert v["quick-test"]["steps"] == round(v["object"]["steps"] * 0.4)
        assert v["quick-test"]["prior_preservation"] is False
        assert v["character"]["flip"] is False and v["object"]["flip"] is True
        assert "{trigger}" in v["style"]["caption"]
    assert values("sd")["character"]["steps"] == 1.5 * values("sd")["object"]["steps"]
    assert values("sdxl")["style"]["rank"] > values("sdxl")["object"]["rank"]
    # Steps follow the image count and masks, as the defaults table's do.
    assert values("small", 5)["object"]["steps"] > values("small", 1)["object"]["steps"]
    assert values("small", 3, True)["object"]["steps"] == 2 * values("small")["object"]["steps"]


@SMALL_ENGINE
def test_presets_are_listed_for_the_model_served(client):
    r = client.get("/presets", params={**ALICE, "images": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["group"] == "small" and body["images"] == 2
    assert [p["name"] for p in body["presets"]] == list(PRESET_NAMES)
    sdxl = client.get("/presets", params={**ALICE, "group": "sdxl"}).json()
    assert (
        sdxl["group"] == "sdxl" and sdxl["presets"][0]["settings"]["learning_rate"]["value"] == 1e-4
    )
    for bad in ({"images": 0}, {"images": 6}, {"group": "flux"}, {"masked": "maybe"}):
        assert_error(client.get("/presets", params={**ALICE, **bad}), 422, "invalid_request")


def planned(client, **form) -> dict:
    """The job's record once planned for the model (then the job is cancelled)."""
    job = start_training(client, [encoded(picture())], name="preset", sample_every="0", **form)
    seen = wait_job(client, job["job_id"], until=lambda j: j["params"].get("steps"))
    client.post(f"/jobs/{job['job_id']}/cancel", params=ALICE)
    wait_job(client, job["job_id"])
    return seen["params"]


@SMALL_ENGINE
def test_a_preset_sets_the_run_and_what_is_sent_overrides_it(client):
    v = values("small", images=1)
    p = planned(client, preset="character", trigger_word="zxq")
    assert p["preset"] == "character" and p["changed_from_preset"] == {}
    assert p["flip"] is False and p["steps"] == v["character"]["steps"]
    p = planned(client, preset="style", trigger_word="zxq", flip="false", rank="4")
    assert p["captions"] == ["a zxq shape"]  # the preset's caption template
    assert p["changed_from_preset"] == {"flip": False, "rank": 4}
    p = planned(client, preset="quick-test", captions="a red ohwx")
    assert p["steps"] == v["quick-test"]["steps"] and p["prior_preservation"] is False
    assert p["changed_from_preset"] == {"captions": "written"}
    p = planned(client)  # no preset: object's, the defaults table
    assert p["preset"] == "object" and p["steps"] == v["object"]["steps"]
    r = client.post(
        "/train-lora",
        params=ALICE,
        files=[("images", ("a.png", encoded(picture()), "image/png"))],
        data={"name": "x", "preset": "portrait"},
    )
    assert "preset" in assert_error(r, 422, "invalid_request")["message"]


@SMALL_ENGINE
def test_the_lora_file_says_its_preset_and_what_was_changed(client, engine):
    job = start_training(
        client, [encoded(picture())], name="quick", preset="quick-test", steps="2", sample_every="0"
    )
    done = wait_job(client, job["job_id"])
    assert done["status"] == "succeeded", done
    with safe_open(str(engine.data_dir / "loras" / "alice" / "quick.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["loramint.preset"] == "quick-test"
    assert meta["loramint.changed_from_preset"] == '{"steps": 2}'
