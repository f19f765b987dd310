"""The user's images and LoRAs: list, import, download, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, Response

from engine.deps import StoreDep, UserIdDep
from engine.uploads import save_lora_upload

router = APIRouter()


@router.get("/loras")
def list_loras(store: StoreDep, user_id: UserIdDep) -> dict[str, Any]:
    return {"user_id": user_id, "loras": store.list_loras(user_id)}


@router.post("/loras", status_code=201)
async def upload_lora(
    store: StoreDep,
    user_id: UserIdDep,
    file: Annotated[UploadFile, File(description="A LoRA .safetensors file.")],
    name: Annotated[str | None, Form(description="Defaults to the upload's name.")] = None,
    overwrite: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    return await save_lora_upload(store, user_id, file, name, overwrite)


@router.get("/loras/{file}", response_model=None)
async def download_lora(
    store: StoreDep,
    user_id: UserIdDep,
    file: str,
    format: Annotated[
        Literal["diffusers", "kohya"], Query(description="kohya: for A1111/ComfyUI/kohya_ss")
    ] = "diffusers",
) -> Response:
    path = store.resolve("loras", user_id, file)
    if format == "diffusers":
        return FileResponse(path, media_type="application/octet-stream", filename=path.name)
    from engine.loras import kohya_bytes  # torch only when someone asks for a conversion

    data = await asyncio.to_thread(kohya_bytes, path)
    name = f"{path.stem}_kohya.safetensors"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.delete("/loras/{file}")
def delete_lora(store: StoreDep, user_id: UserIdDep, file: str) -> dict[str, Any]:
    store.delete("loras", user_id, file)
    return {"deleted": file}


@router.get("/images")
def list_images(store: StoreDep, user_id: UserIdDep) -> dict[str, Any]:
    return {"user_id": user_id, "images": store.list_images(user_id)}


@router.get("/images/{file}")
def download_image(store: StoreDep, user_id: UserIdDep, file: str) -> FileResponse:
    return FileResponse(store.resolve("outputs", user_id, file), media_type="image/png")


@router.delete("/images/{file}")
def delete_image(store: StoreDep, user_id: UserIdDep, file: str) -> dict[str, Any]:
    store.delete("outputs", user_id, file)
    return {"deleted": file}
