"""The user's images and LoRAs: list, import, download, edit, delete.

File names are path parameters that may hold anything (`{file:path}`), so every name,
however mangled, reaches the one name check in `UserStore.key`. Files are streamed from the
store, whichever backend holds them."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response, StreamingResponse

from engine.contract.accounts import Usage
from engine.contract.errors import InvalidRequest
from engine.contract.files import (
    Deleted,
    ImageList,
    ImageUploaded,
    ImageUploadForm,
    LoraEntry,
    LoraImported,
    LoraImportForm,
    LoraList,
    LoraPatch,
)
from engine.contract.handlers import ContractRoute
from engine.contract.names import Kind, check_file_name
from engine.contract.schemas import (
    ERROR_RESPONSES,
)
from engine.deps import StoreDep, UserIdDep, WorkDep
from engine.storage import UserStore
from engine.uploads import save_image_upload, save_lora_upload

router = APIRouter(route_class=ContractRoute, responses=ERROR_RESPONSES)
MULTIPART = "multipart/form-data"


@router.get("/loras")
def list_loras(store: StoreDep, user_id: UserIdDep) -> LoraList:
    return LoraList(user_id=user_id, loras=store.list_loras(user_id))


@router.post("/images", status_code=201)
async def upload_image(
    work: WorkDep,
    user_id: UserIdDep,
    form: Annotated[ImageUploadForm, Form(media_type=MULTIPART)],
) -> ImageUploaded:
    """An image of your own into your gallery (recorded as `source: upload`)."""
    return await save_image_upload(work.store, user_id, form.image, work.settings.user_quota_mb)


@router.post("/loras", status_code=201)
async def upload_lora(
    work: WorkDep,
    user_id: UserIdDep,
    form: Annotated[LoraImportForm, Form(media_type=MULTIPART)],
) -> LoraImported:
    quota = work.settings.user_quota_mb
    return await save_lora_upload(work.store, user_id, form.file, form.name, form.overwrite, quota)


@router.get("/loras/{file:path}", response_model=None)
async def download_lora(
    store: StoreDep,
    user_id: UserIdDep,
    file: str,
    format: Annotated[
        Literal["diffusers", "kohya"], Query(description="kohya: for A1111/ComfyUI/kohya_ss")
    ] = "diffusers",
) -> Response:
    if format == "diffusers":
        return _send(store, "loras", user_id, file, "application/octet-stream", attach=True)
    from engine.loras import kohya_bytes  # torch only when someone asks for a conversion

    path = await asyncio.to_thread(store.local_file, "loras", user_id, file)
    canonical = check_file_name(file, "loras")
    data = await asyncio.to_thread(kohya_bytes, path, canonical)
    name = f"{canonical.removesuffix('.safetensors')}_kohya.safetensors"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.patch("/loras/{file:path}")
async def edit_lora(store: StoreDep, user_id: UserIdDep, file: str, patch: LoraPatch) -> LoraEntry:
    """Change the trigger word, description or preferred strength stored in the file's
    header; its tensors stay byte for byte as they were."""
    changes = {
        f"loramint.{k}": v if isinstance(v, str) else json.dumps(v)
        for k, v in patch.model_dump(exclude_unset=True).items()
        if v is not None
    }
    if not changes:
        raise InvalidRequest(
            "send at least one of trigger_word, description, preferred_strength",
            code="nothing_to_change",
        )
    await asyncio.to_thread(_rewrite, store, user_id, file, changes)
    return LoraEntry(**store.lora_entry(user_id, file))


def _rewrite(store: UserStore, user_id: str, file: str, changes: dict[str, str]) -> None:
    from engine.lora_metadata import rewrite_metadata

    version = store.info("loras", user_id, file)
    source = store.local_file("loras", user_id, file)
    # Conditional on the version read: an edit racing another edit or a retrain fails (409)
    # rather than putting back the tensors it read.
    with store.writing("loras", user_id, file, if_match=version.etag) as tmp:
        rewrite_metadata(source, tmp, changes, repr(file))


@router.delete("/loras/{file:path}")
def delete_lora(store: StoreDep, user_id: UserIdDep, file: str) -> Deleted:
    store.delete("loras", user_id, file)
    return Deleted(deleted=file)


@router.get("/usage")
def usage(store: StoreDep, user_id: UserIdDep) -> Usage:
    """How many LoRAs and images the user keeps, and their size in bytes."""
    return Usage(**store.usage(user_id))


@router.get("/images")
def list_images(
    store: StoreDep,
    user_id: UserIdDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Images per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=400, description="`next_cursor` of the page before.")
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Only images whose prompt or LoRA names hold this."),
    ] = None,
) -> ImageList:
    """Newest first, a page at a time."""
    images, next_cursor = store.list_images(user_id, limit, cursor, q)
    return ImageList(user_id=user_id, images=images, next_cursor=next_cursor)


@router.get("/images/{file:path}", response_model=None)
def download_image(store: StoreDep, user_id: UserIdDep, file: str) -> StreamingResponse:
    return _send(store, "outputs", user_id, file, "image/png")


def _send(
    store: UserStore, kind: Kind, user_id: str, file: str, media_type: str, attach=False
) -> StreamingResponse:
    info, chunks = store.stream(kind, user_id, file)
    headers = {"content-length": str(info.size), "etag": info.etag}
    if attach:
        headers["content-disposition"] = f'attachment; filename="{info.name}"'
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@router.delete("/images/{file:path}")
def delete_image(store: StoreDep, user_id: UserIdDep, file: str) -> Deleted:
    store.delete("outputs", user_id, file)
    return Deleted(deleted=file)
