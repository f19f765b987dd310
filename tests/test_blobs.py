"""The shared-storage interface (engine/blobs), the same tests on the local disk and on Azure
Blob Storage (a real Azurite started by the test): keys, traversal, cross-user isolation,
conditional writes, atomic replace under concurrent readers, and the workers' LoRA cache."""

from __future__ import annotations

import threading
import uuid

import pytest

from engine.blobs import BlobFileCache, blob_key, check_key, open_store
from engine.contract.errors import Conflict, InvalidRequest, NotFound
from engine.contract.settings import StorageSettings


@pytest.fixture(params=["local", "azure"])
def store(request, tmp_path):
    if request.param == "azure":
        conn = request.getfixturevalue("azurite")
        # A container per test: no test sees another's blobs.
        azure = {"ConnectionString": conn, "Container": f"t{uuid.uuid4().hex[:12]}"}
        return open_store(StorageSettings(Backend="azure", Azure=azure), tmp_path)
    return open_store(StorageSettings(), tmp_path / "store")


def test_write_read_list_delete(store):
    key = blob_key("loras", "alice", "cat")
    assert key == "loras/alice/cat.safetensors"
    etag = store.put(key, b"one")
    data, info = store.read(key)
    assert (data, info.size, info.etag, info.name) == (b"one", 3, etag, "cat.safetensors")
    assert store.put(key, b"two!") != etag
    assert [(b.name, b.size) for b in store.list("loras", "alice")] == [("cat.safetensors", 4)]
    info, chunks = store.stream(key)
    assert b"".join(chunks) == b"two!" and info.size == 4
    store.delete(key)
    with pytest.raises(NotFound):
        store.read(key)
    with pytest.raises(NotFound):
        store.delete(key)
    assert store.list("loras", "alice") == []


@pytest.mark.parametrize(
    "kind, user, name",
    [
        ("loras", "alice", "../bob/cat"),
        ("loras", "alice", "a/b"),
        ("loras", "..", "cat"),
        ("loras", "alice/../bob", "cat"),
        ("outputs", "alice", ".hidden"),
        ("jobs", "alice", "../../etc/passwd"),
        ("secrets", "alice", "cat"),
        ("loras", "alice", "/etc/passwd"),
    ],
)
def test_no_key_leaves_its_users_folder(store, kind, user, name):
    with pytest.raises(InvalidRequest):
        blob_key(kind, user, name)


@pytest.mark.parametrize(
    "key",
    [
        "loras/alice/../bob/cat.safetensors",
        "loras/bob/x.png",
        "/loras/a/b.safetensors",
        "loras/alice",
        "loras//cat.safetensors",
        "outputs/alice/a.png/b.png",
    ],
)
def test_the_store_refuses_keys_built_elsewhere(store, key):
    with pytest.raises(InvalidRequest):
        check_key(key)
    for call in (lambda: store.put(key, b"x"), lambda: store.read(key), lambda: store.info(key)):
        with pytest.raises(InvalidRequest):
            call()


def test_users_see_only_their_own(store):
    store.put(blob_key("outputs", "alice", "a1"), b"alice's")
    store.put(blob_key("outputs", "bob", "b1"), b"bob's")
    store.put(blob_key("loras", "alice", "x"), b"lora")
    assert [b.name for b in store.list("outputs", "alice")] == ["a1.png"]
    assert [b.name for b in store.list("outputs", "bob")] == ["b1.png"]
    assert store.list("outputs", "carol") == []
    # alice's file name under bob's prefix is not alice's file
    with pytest.raises(NotFound):
        store.read(blob_key("outputs", "bob", "a1"))


def test_conditional_writes(store):
    key = blob_key("jobs", "alice", "job1.json")
    first = store.put(key, b"{}", create_only=True)
    with pytest.raises(Conflict):
        store.put(key, b"{}", create_only=True)
    second = store.put(key, b'{"a": 1}', if_match=first)
    with pytest.raises(Conflict):  # a writer that read the first version lost the race
        store.put(key, b'{"b": 2}', if_match=first)
    with pytest.raises(Conflict):
        store.delete(key, if_match=first)
    assert store.read(key)[0] == b'{"a": 1}'
    store.delete(key, if_match=second)


def test_readers_never_see_half_a_file(store):
    """One writer replaces a 1 MB blob with all-A or all-B content while readers read it:
    every read is one whole version."""
    key = blob_key("loras", "alice", "big")
    size = 1 << 20
    versions = [b"A" * size, b"B" * size]
    store.put(key, versions[0])
    done = threading.Event()
    bad: list[str] = []
    reads = [0]

    def writer():
        for i in range(12):
            store.put(key, versions[i % 2])
        done.set()

    def reader():
        while not done.is_set():
            data, info = store.read(key)
            reads[0] += 1
            if data not in versions or info.size != size:
                bad.append(f"{len(data)} bytes, {len(set(data))} distinct")

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert reads[0] > 3 and not bad, bad[:3]


def test_workers_fetch_each_lora_version_once(store, tmp_path):
    key = blob_key("loras", "alice", "cat")
    store.put(key, b"version 1")
    worker_a = BlobFileCache(store, tmp_path / "cache-a")
    worker_b = BlobFileCache(store, tmp_path / "cache-b")
    own = store.local_file(key)
    if own is not None:  # a store on this disk is its own cache: nothing is copied
        assert worker_a.path(key) == own and own.read_bytes() == b"version 1"
        assert worker_a.downloads == 0 and not (tmp_path / "cache-a").exists()
        return
    first = worker_a.path(key)
    assert first.read_bytes() == b"version 1"
    assert worker_a.path(key) == first and worker_a.downloads == 1
    assert worker_b.path(key).read_bytes() == b"version 1" and worker_b.downloads == 1
    store.put(key, b"version 2")
    second = worker_a.path(key)
    assert second.read_bytes() == b"version 2" and worker_a.downloads == 2
    assert not first.exists()  # the old copy is gone
    assert worker_a.path(key) == second and worker_a.downloads == 2


def test_put_file_hands_over_a_written_file(store, tmp_path):
    """What training and uploads use: a temp file, written whole, then stored in one step."""
    key = blob_key("loras", "alice", "big")
    tmp = tmp_path / "incoming.tmp"
    tmp.write_bytes(b"x" * 300_000)
    etag = store.put_file(key, tmp, create_only=True)
    assert store.info(key).etag == etag and store.read(key)[0] == b"x" * 300_000
    tmp.write_bytes(b"y")
    with pytest.raises(Conflict):
        store.put_file(key, tmp, create_only=True)
    with pytest.raises(Conflict):
        store.put_file(key, tmp, if_match='"stale"')
    assert store.read(key)[0] == b"x" * 300_000


def test_links_in_a_local_store_are_refused(tmp_path):
    store = open_store(StorageSettings(), tmp_path / "store")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stolen.safetensors").write_bytes(b"not yours")
    (tmp_path / "store" / "loras").mkdir(parents=True)
    (tmp_path / "store" / "loras" / "mallory").symlink_to(elsewhere)
    key = blob_key("loras", "mallory", "stolen")
    for call in (
        lambda: store.read(key),
        lambda: store.list("loras", "mallory"),
        lambda: store.delete(key),
        lambda: store.put(key, b"x"),
    ):
        with pytest.raises(InvalidRequest) as err:
            call()
        assert err.value.code == "invalid_user_folder"
    assert (elsewhere / "stolen.safetensors").read_bytes() == b"not yours"
