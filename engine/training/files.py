"""What a training job keeps in the store (#28), under `jobs/{user}/`, through `UserStore` like
every user file (atomic writes, the user's quota, local disk or the shared container):

- `img-{sha256}.png`: the training images, by the hash of the upload, shared by the jobs that
  used them (a resume or a continue trains on them again, on any worker); a masked one
  (`img-{sha256}-{mask sha256}.png`) keeps its mask as its alpha channel;
- `{job}-state.safetensors`: the latest training state of the job (`state.py`), replaced at
  each checkpoint, so a resume goes on from its last one;
- `{job}-{step}.safetensors`: the LoRA at a checkpoint, with a finished LoRA's metadata.

A file is removed when no job that is still remembered refers to it (`prune`). Torch-free:
the front and a celery dispatcher use it too."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from engine.contract.errors import Conflict, NotFound
from engine.contract.jobs import Job
from engine.contract.names import check_file_name
from engine.contract.training import JobCheckpoint, ResumedFrom
from engine.lora_metadata import rewrite_metadata
from engine.storage import UserStore
from engine.uploads import TrainingImage, decode_training_image

KIND = "jobs"


def image_name(sha256: str, mask_sha256: str | None = None) -> str:
    if mask_sha256 is None:
        return f"img-{sha256[:40]}.png"
    return f"img-{sha256[:32]}-{mask_sha256[:32]}.png"


def state_name(job_id: str) -> str:
    return f"{job_id}-state.safetensors"


def checkpoint_name(job_id: str, step: int) -> str:
    return f"{job_id}-{step}.safetensors"


def kept_checkpoint(job: Job, step: int, verb: str) -> JobCheckpoint:
    """The job's checkpoint at `step`: 404 if it has none there, 409 if it was dropped."""
    point = next((c for c in job.checkpoints if c.step == step), None)
    if point is None:
        steps = ", ".join(str(c.step) for c in job.checkpoints if c.kept) or "none"
        raise NotFound(f"job {job.id!r} has no checkpoint at step {step} (kept: {steps})")
    if not point.kept or not point.file:
        raise Conflict(
            f"the checkpoint at step {step} was dropped (keep_checkpoints); {verb} one that "
            "is kept",
            code="checkpoint_dropped",
        )
    return point


class JobFiles:
    def __init__(self, store: UserStore) -> None:
        self.store = store

    # -- the images ----------------------------------------------------------------------
    def keep_images(self, user: str, images: list[TrainingImage]) -> None:
        for im in images:
            name = image_name(im.sha256, im.mask_sha256)
            if self.store.exists(KIND, user, name):
                continue
            picture = im.image
            if im.mask is not None:
                picture = picture.copy()
                picture.putalpha(im.mask)
            with self.store.writing(KIND, user, name) as tmp:
                picture.save(tmp, format="PNG")

    def images(self, user: str, kept: list[tuple[str, str | None]]) -> list[TrainingImage]:
        """The images a job trained on, as they were kept (with their masks); 404 if one is
        gone."""
        out = []
        for sha, mask_sha in kept:
            name = image_name(sha, mask_sha)
            try:
                data = self.store.local_file(KIND, user, name).read_bytes()
            except NotFound:
                raise NotFound(
                    "this training's images are no longer kept (its job was forgotten); "
                    "train again with the images"
                ) from None
            image = decode_training_image(data, name, masked=mask_sha is not None)
            out.append(replace(image, sha256=sha))
        return out

    # -- state and checkpoints -----------------------------------------------------------
    def put(self, user: str, name: str, data: bytes) -> None:
        with self.store.writing(KIND, user, name) as tmp:
            tmp.write_bytes(data)

    def state(self, user: str, job_id: str) -> bytes | None:
        """The job's latest training state, None if it kept none."""
        try:
            return self.store.local_file(KIND, user, state_name(job_id)).read_bytes()
        except NotFound:
            return None

    def own_state(self, job: Job) -> Any:
        """A job handed back to the queue (its worker stopped) goes on from its own last
        checkpoint, on whichever worker takes it."""
        from engine.training.state import TrainingState

        if not any((c.file or "").startswith(job.id) for c in job.checkpoints):
            return None
        data = self.state(job.user_id, job.id)
        return TrainingState.from_bytes(data) if data else None

    def resume_point(self, user: str, source: ResumedFrom | None) -> Any:
        """The state a resumed or continued job goes on from (None: from the start)."""
        from safetensors.torch import load

        from engine.training.state import TrainingState

        if source is None:
            return None
        if source.fresh_optimizer:
            data = self.store.local_file("loras", user, source.lora or "").read_bytes()
            return TrainingState.from_lora(source.step, load(data))
        data = self.state(user, source.job_id)
        if data is None:
            raise NotFound(f"job {source.job_id!r} kept no checkpoint to go on from")
        state = TrainingState.from_bytes(data)
        if state.step != source.step:
            raise Conflict(
                f"job {source.job_id!r}'s checkpoint is at step {state.step}, not {source.step}"
            )
        return state

    def drop(self, user: str, name: str) -> None:
        with contextlib.suppress(NotFound):
            self.store.delete(KIND, user, name)

    def save_as_lora(
        self, user: str, job: Job, step: int, name: str, changes: dict[str, str], overwrite: bool
    ) -> str:
        """A kept checkpoint copied into the user's LoRAs, its metadata updated on the way."""
        point = kept_checkpoint(job, step, "save")
        file = check_file_name(name, "loras")
        if self.store.exists("loras", user, file) and not overwrite:
            raise Conflict(f"LoRA {file!r} already exists; send overwrite=true to replace it")
        src = self.store.local_file(KIND, user, point.file or "")
        with self.store.writing("loras", user, file, replace=overwrite) as tmp:
            rewrite_metadata(src, tmp, {**changes, "ss_output_name": name}, repr(file))
        return file

    # -- forgetting ----------------------------------------------------------------------
    def prune(self, user: str, jobs: list[Job]) -> None:
        """Remove the files no remembered job refers to (their jobs were forgotten). A job
        still running may have written a checkpoint it has not recorded yet: its files stay."""
        wanted = {state_name(j.id) for j in jobs}
        running = tuple(f"{j.id}-" for j in jobs if not j.status.terminal)
        for job in jobs:
            wanted.update(c.file for c in job.checkpoints if c.file and c.kept)
            shas = job.params.get("image_sha256") or []
            masks = job.params.get("mask_sha256") or [None] * len(shas)
            wanted.update(image_name(s, m) for s, m in zip(shas, masks, strict=False))
        for blob in self.store.blobs.list(KIND, user):
            if blob.name not in wanted and not blob.name.startswith(running):
                self.drop(user, blob.name)
