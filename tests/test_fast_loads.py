"""Warm loads at deserialize speed, with integrity unchanged: what a remembered digest may
and may not stand for (see "Loads" in docs/explanation/performance.md)."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import IntegrityError, Limits, PluginHost, PluginLoadError, _files
from airssys_plugins.discovery.lockfile import LockEntry, Lockfile
from airssys_plugins.discovery.sources import PluginSource, discover_plugins
from airssys_plugins.host.provenance import check_signature
from airssys_plugins.runtime import ComponentImage, engine
from airssys_plugins.runtime import image as _image

from .demo import PACKAGE, DemoHooks

Demo = Callable[..., Path]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times a component file is read whole and hashed (the digests of the
    package's own code, which the cache notes' stamps name, are taken first: a process
    hashes those once, whichever test comes first)."""
    _image._types_stamp()
    _image._checked_stamp()
    counts = {"read": 0, "sha256": 0}
    real_read, real_sha = _files.RegularFile.read, _files.RegularFile.sha256

    def read(self: _files.RegularFile) -> bytes:
        counts["read"] += 1
        return real_read(self)

    def sha256(self: _files.RegularFile) -> str:
        counts["sha256"] += 1
        return real_sha(self)

    monkeypatch.setattr(_files.RegularFile, "read", read)
    monkeypatch.setattr(_files.RegularFile, "sha256", sha256)
    return counts


def _rewrite_keeping_size_and_mtime(path: Path, other: Path) -> None:
    """Put ``other``'s bytes (same size) in ``path`` and set its mtime back: only the ctime
    (which no unprivileged process can set) tells the change."""
    before = path.stat()
    data = other.read_bytes()
    assert len(data) == before.st_size
    time.sleep(0.05)  # past the timestamp granularity: the test moved FileKey's clock
    with path.open("r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    assert after.st_ctime_ns != before.st_ctime_ns


def test_a_warm_load_neither_reads_nor_hashes_the_file(
    demo: Demo, private_cache: Path, settled: None, counted: dict[str, int], tmp_path: Path
) -> None:
    """Loaded again (in this process), an unchanged component is neither read nor hashed:
    its digest is remembered for its file version, its compiled artefact mapped."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=4, funcs=["add-one"]), wasm)
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(wasm, name="first")
        assert counted == {"read": 1, "sha256": 1}  # compiled: read once, hashed once
        host.load(wasm, name="second")
        host.unload("first")
        host.unload("second")
        host.load(wasm, name="third")
        assert counted == {"read": 1, "sha256": 1}
        assert pm.hook.add_one(x=1) == [5]


def test_a_new_process_takes_the_digest_from_the_cache_index(
    demo: Demo, private_cache: Path, settled: None, tmp_path: Path
) -> None:
    """A new process finds the digest of an unchanged file in the compile cache's digest
    index: it loads without reading or hashing the component."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=6, funcs=["add-one"]), wasm)
    image = ComponentImage.load("adder", wasm)
    assert list((private_cache / "digests").iterdir())
    code = f"""
import time
from pathlib import Path
from airssys_plugins import _files
from airssys_plugins.runtime import ComponentImage
_files._now_ns = lambda: time.time_ns() + 10 * _files.RACY_NS
read, sha256 = _files.RegularFile.read, _files.RegularFile.sha256
def refuse(real):
    def check(self, *a):
        if self.path.suffix == ".wasm":
            raise AssertionError("the component was read")
        return real(self, *a)  # the package's own sources, hashed once for the type notes
    return check
_files.RegularFile.read, _files.RegularFile.sha256 = refuse(read), refuse(sha256)
print(ComponentImage.load("adder", Path({str(wasm)!r})).sha256)
"""
    env = dict(os.environ, AIRSSYS_PLUGINS_CACHE_DIR=str(private_cache.parent))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == image.sha256


def test_a_damaged_digest_index_entry_is_ignored(
    demo: Demo, private_cache: Path, settled: None, counted: dict[str, int], tmp_path: Path
) -> None:
    """An index entry that is not a SHA-256 is not believed: the file is hashed again."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=6, funcs=["add-one"]), wasm)
    first = ComponentImage.load("adder", wasm)
    # (the index also holds the package's own code files, whose digests stamp the notes)
    [entry] = [e for e in (private_cache / "digests").iterdir() if first.sha256 in e.read_text()]
    entry.write_text("not a digest")
    _files.forget_digests()
    assert ComponentImage.load("adder", wasm).sha256 == first.sha256
    assert counted["sha256"] == 2


def test_a_file_changed_in_place_is_hashed_again_and_refused_by_the_lockfile(
    demo: Demo, private_cache: Path, settled: None, tmp_path: Path
) -> None:
    """Same size, mtime put back, same inode: the remembered digest is not used (the ctime
    changed), the new content is hashed and the lockfile refuses it."""
    d = tmp_path / "plugins" / "adder"
    d.mkdir(parents=True)
    (d / "plugin.toml").write_text('name = "adder"\nversion = "1.0.0"\n')
    shutil.copy(demo(k=1, funcs=["add-one"]), d / "adder.wasm")
    found = discover_plugins(
        "demo", [tmp_path / "plugins"], user_dirs=False, site_dirs=False, packs=False
    )
    [source] = found
    lock = Lockfile.from_entries("demo", [LockEntry.for_source(source, source.component_digest())])
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        assert host.load_plugins(found, lockfile=lock, strict=True).loaded
        host.unload("adder")
        assert _files.known_digest(_files.FileKey.of((d / "adder.wasm").stat())) is not None
        _rewrite_keeping_size_and_mtime(d / "adder.wasm", demo(k=2, funcs=["add-one"]))
        with pytest.raises(IntegrityError, match="nothing of it was loaded") as info:
            host.load_plugins(found, lockfile=lock, strict=True)
        assert info.value.plugin == "adder"
        assert host.plugins == {}
        # and by path, against the digest a signature check handed over
        with pytest.raises(PluginLoadError, match="changed after the check") as refused:
            ComponentImage.load("adder", d / "adder.wasm", sha256=lock.entries["adder"].sha256)
        assert refused.value.plugin == "adder"


def test_a_remembered_digest_never_gets_other_bytes_compiled(
    demo: Demo, private_cache: Path, settled: None, tmp_path: Path
) -> None:
    """A memo entry that lies (as a filesystem faking timestamps would make one) can only
    name an artefact compiled from bytes of that digest: bytes that must be compiled are
    hashed first, and refused when they are not the remembered digest's."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=3, funcs=["add-one"]), wasm)
    other = ComponentImage.load("other", demo(k=9, funcs=["add-one"]), cache=False)
    key = _files.FileKey.of(wasm.stat())
    assert key is not None
    _files.remember_digest(key, other.sha256)  # the lie
    with pytest.raises(PluginLoadError, match="changed while it was being loaded") as info:
        ComponentImage.load("adder", wasm)
    assert info.value.plugin == "adder"
    assert not list(private_cache.glob(f"{other.sha256}*.cwasm"))  # nothing cached under it


def test_a_file_key_is_the_status_tuple_it_names(tmp_path: Path) -> None:
    """A key is the tuple (dev, ino, size, mtime_ns, ctime_ns) of the status it was made
    from, with those names: equal and hashed as that tuple, a token joining them."""
    path = tmp_path / "f"
    path.write_bytes(b"xyz")
    st = path.stat()
    key = _files.FileKey.of(st, now_ns=st.st_ctime_ns + _files.RACY_NS)
    assert key is not None
    fields = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    assert (key.dev, key.ino, key.size, key.mtime_ns, key.ctime_ns) == fields
    assert key == fields
    assert hash(key) == hash(fields)
    assert key.token() == "-".join(map(str, fields))
    assert repr(key) == "FileKey(dev={}, ino={}, size={}, mtime_ns={}, ctime_ns={})".format(*fields)


def test_the_code_stamp_names_the_files_versions_without_opening_them(
    tmp_path: Path, settled: None, counted: dict[str, int]
) -> None:
    """The cache notes' stamp of the package's own source files is their statuses hashed:
    the same in a process with another hash seed, another when any file is rewritten,
    and no file is opened or hashed for it. A file changed just now (its status not yet
    trusted) is named by the digests of the files' contents instead."""
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("x = 1\n")
    second.write_text("y = 2\n")
    stamp = _image._code_stamp([first, second])
    assert stamp.startswith("k")
    assert len(stamp) == 17
    assert counted == {"read": 0, "sha256": 0}
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from airssys_plugins import _files\n"
        "from airssys_plugins.runtime import image\n"
        "_files._now_ns = lambda: time.time_ns() + 10 * _files.RACY_NS\n"
        "print(image._code_stamp([Path(p) for p in sys.argv[1:]]))\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, str(first), str(second)],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        assert out.stdout.strip() == stamp
    second.write_text("y = 3\n")  # same size, new content: a new ctime and mtime
    other = _image._code_stamp([first, second])
    assert other.startswith("k")
    assert other != stamp
    _files.forget_digests()
    racy = tmp_path / "c.py"
    racy.write_text("z = 4\n")
    os.utime(racy, ns=(time.time_ns(), time.time_ns()))
    import hashlib

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()[:10]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_files, "_now_ns", time.time_ns)  # c.py was changed within RACY_NS
        assert _image._code_stamp([first, racy]) == f"{digest(first)}-{digest(racy)}"


def test_a_file_changed_just_now_is_not_remembered(tmp_path: Path) -> None:
    """A version younger than RACY_NS gets no key (a write in the same timestamp tick would
    not change it); nor does a file without an inode or a ctime."""
    path = tmp_path / "f"
    path.write_bytes(b"x")
    st = path.stat()
    assert _files.FileKey.of(st) is None
    assert _files.FileKey.of(st, now_ns=st.st_ctime_ns + _files.RACY_NS) is not None
    fake = os.stat_result((st.st_mode, 0, *st[2:]))  # no inode number
    assert _files.FileKey.of(fake, now_ns=st.st_ctime_ns + _files.RACY_NS) is None


def test_an_artefact_of_another_engine_configuration_is_not_used(
    demo: Demo,
    private_cache: Path,
    settled: None,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """A fuel-metered plugin gets an artefact of its own; one compiled for the other
    engine, found under this engine's name, is refused by wasmtime and compiled again, also
    when this process remembers the component's digest and types."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=5, funcs=["add-one"]), wasm)
    plain = ComponentImage.load("adder", wasm)
    metered = ComponentImage.load("adder", wasm, fuel=True)
    assert (plain.fuel, metered.fuel) == (False, True)
    assert plain.component is not metered.component

    def entry(fuel: bool) -> Path:
        [found] = private_cache.glob(f"*-{engine._file_tag(fuel)}.cwasm")
        return found

    plain_entry, fuel_entry = entry(False), entry(True)
    assert plain_entry != fuel_entry
    del plain, metered
    engine.release_compiled()
    gc.collect()  # no live or kept component left to share: the next load maps the entry
    swapped = plain_entry.with_suffix(".swap")
    shutil.copy(fuel_entry, swapped)
    os.replace(swapped, plain_entry)  # never rewrite a cache entry in place (SIGBUS if mapped)
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with caplog.at_level(logging.WARNING), PluginHost(pm, package=PACKAGE) as host:
        host.load(wasm, name="adder")
        assert pm.hook.add_one(x=1) == [6]
    assert "is unusable" in caplog.text
    assert "recompiling" in caplog.text


def test_limits_still_apply_to_a_remembered_file(
    demo: Demo, private_cache: Path, settled: None, tmp_path: Path
) -> None:
    """The size cap and the regular-file check run on every load, remembered or not."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=5, funcs=["add-one"]), wasm)
    ComponentImage.load("adder", wasm)
    size = wasm.stat().st_size
    with pytest.raises(PluginLoadError, match="above the cap") as info:
        ComponentImage.load("adder", wasm, max_bytes=size - 1)
    assert info.value.plugin == "adder"
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host, pytest.raises(PluginLoadError):
        host.load(wasm, name="capped", limits=Limits(max_component_bytes=size - 1))


def test_the_digest_memo_can_be_switched_off(
    demo: Demo,
    private_cache: Path,
    settled: None,
    counted: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """With AIRSSYS_PLUGINS_NO_DIGEST_MEMO set, every load hashes the file again."""
    monkeypatch.setenv(_files.NO_DIGEST_MEMO_ENV, "1")
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=8, funcs=["add-one"]), wasm)
    for _ in range(3):
        ComponentImage.load("adder", wasm)
    assert counted["sha256"] == 3
    assert not (private_cache / "digests").exists()


def test_what_load_plugins_checked_is_what_a_load_by_path_compiles(
    demo: Demo, private_cache: Path, settled: None, tmp_path: Path
) -> None:
    """The digest check_signature saw (under every policy, also "ignore") is the one a
    following host.load(path) of that component loads under: the file swapped in between
    is refused, not loaded unchecked."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=1, funcs=["add-one"]), wasm)
    source = PluginSource.from_path(wasm)
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        digest = source.component_digest()
        check_signature(source, digest, host.signatures, host.audit)
        _rewrite_keeping_size_and_mtime(wasm, demo(k=2, funcs=["add-one"]))
        with pytest.raises(PluginLoadError, match="changed after the check") as info:
            host.load(wasm, name=source.name)
        assert info.value.plugin == "adder"
        assert host.plugins == {}
        host.load(wasm, name=source.name)  # a load of its own checks what it loads
        assert pm.hook.add_one(x=1) == [3]


def test_a_file_grown_past_the_cap_after_its_check_is_a_load_error(
    demo: Demo, private_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file that grows past the cap between the size check and the hash (or the read)
    is refused with a PluginLoadError naming the plugin, not a bare OSError."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=5, funcs=["add-one"]), wasm)
    size = wasm.stat().st_size
    real_open = _files.open_regular_file

    def then_grow(path: Path, **kwargs: object) -> _files.RegularFile:
        opened = real_open(path, **kwargs)  # type: ignore[arg-type]
        with Path(path).open("ab") as f:
            f.write(b"\0" * 64)  # a custom section's worth, after the size check
        return opened

    monkeypatch.setattr("airssys_plugins.runtime.image.open_regular_file", then_grow)
    with pytest.raises(PluginLoadError, match="more than") as info:
        ComponentImage.load("adder", wasm, max_bytes=size + 10)
    assert info.value.plugin == "adder"
    assert isinstance(info.value.__cause__, _files.FileRefusedError)


def test_a_new_process_reads_the_exports_types_from_a_note(
    demo: Demo,
    private_cache: Path,
    settled: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """The exported functions' types are kept beside the compile cache: a process that
    has not read them (here: its memo emptied) takes them from the note instead of
    wasmtime's type API. A damaged note, or one naming any class but the WIT model's, is
    not used (nothing in it runs): the types are read again and the note rewritten."""
    import marshal
    import weakref
    from collections import OrderedDict

    from airssys_plugins.runtime import notes

    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=7, funcs=["add-one", "pick"]), wasm)
    first = ComponentImage.load("adder", wasm)
    [note] = private_cache.glob("*-types-*.plan")
    exports, imports = first.exports, first.imports
    del first
    gc.collect()

    def new_process() -> None:
        monkeypatch.setattr(_image, "_FACTS", OrderedDict())
        monkeypatch.setattr(engine, "_LIVE_COMPONENTS", weakref.WeakValueDictionary())
        monkeypatch.setattr(engine, "_kept", OrderedDict())
        gc.collect()

    new_process()
    read = []
    from airssys_plugins.runtime import wit_types

    real = wit_types.component_exports
    monkeypatch.setattr(wit_types, "component_exports", lambda *a: read.append(a) or real(*a))
    again = ComponentImage.load("adder", wasm)
    assert (again.exports, again.imports) == (exports, imports)
    assert read == []  # from the note
    del again
    ran = []
    # a note naming a class of the model that may not be in one (nor may any other code)
    evil = marshal.dumps((notes.FORMAT, (("Interface", ("name",)),), ((0, ("x",)),), ({}, (0,))), 4)
    for damaged in (b"not a note", evil):
        note.write_bytes(damaged)
        new_process()
        with caplog.at_level(logging.WARNING):
            third = ComponentImage.load("adder", wasm)
        assert (third.exports, third.imports) == (exports, imports)
        assert "unreadable type note" in caplog.text
        ran.append(len(read))
        caplog.clear()
        del third
    assert ran == [1, 2]  # read through wasmtime each time, and the note written again
    assert notes.load(note.read_bytes(), _image._NOTE_CLASSES) == (exports, imports)


def test_a_known_file_version_is_loaded_without_opening_it(
    demo: Demo,
    private_cache: Path,
    settled: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A file version this process loaded before is found by its status alone (no open,
    no read); a changed file, a digest a check asks for that it does not have, or what is
    no regular file any more, go the long way, with its checks and errors."""
    from airssys_plugins.runtime import image as image_module

    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=4, funcs=["add-one"]), wasm)
    opened: list[Path] = []
    real_open = image_module.open_regular_file

    def counting(path: Path, **kwargs: object) -> _files.RegularFile:
        opened.append(Path(path))
        return real_open(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(image_module, "open_regular_file", counting)
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        first = host.load(wasm, name="first")
        assert opened == [wasm]
        host.load(wasm, name="second")
        host.unload("first")
        host.load(wasm, name="third")
        assert opened == [wasm]  # by status alone
        assert pm.hook.add_one(x=1) == [5, 5]
        # a digest the caller checked that this version does not have: refused as before
        with pytest.raises(PluginLoadError, match="changed after the check"):
            ComponentImage.load("adder", wasm, sha256="0" * 64)
        assert len(opened) == 2
        # the file changed in place (only its ctime tells): opened, hashed, the new code
        _rewrite_keeping_size_and_mtime(wasm, demo(k=8, funcs=["add-one"]))
        changed = host.load(wasm, name="changed")
        assert len(opened) == 3
        assert changed.sha256 != first.sha256
        assert sorted(pm.hook.add_one(x=1)) == [5, 5, 9]
        # a FIFO where the file was: refused before anything blocks
        wasm.unlink()
        os.mkfifo(wasm)
        with pytest.raises(PluginLoadError, match="not a regular file") as info:
            host.load(wasm, name="fifo")
        assert info.value.plugin == "fifo"


def test_a_host_without_the_compile_cache_opens_the_file_at_every_load(
    demo: Demo, private_cache: Path, settled: None, counted: dict[str, int], tmp_path: Path
) -> None:
    """``compile_cache=False`` starts every load from scratch: the file is read and
    hashed each time, never found by its status."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=4, funcs=["add-one"]), wasm)
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE, compile_cache=False) as host:
        host.load(wasm, name="first")
        host.unload("first")
        host.load(wasm, name="again")
        assert counted["read"] == 2
