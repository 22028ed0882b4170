"""The private wasmtime-py names runtime/capi.py relies on still exist, with the same shape.

A wasmtime-py upgrade that renames or retypes one fails here, naming the installed
version and the internal, rather than as a crash deep in a hook call. A second check
keeps every such use inside capi.py.
"""

from __future__ import annotations

import ast
import ctypes
import inspect
from pathlib import Path

import pytest
import wasmtime
from wasmtime import Engine, Store, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import Component, Func, Linker, LinkerInstance

from airssys_plugins.runtime import capi

RUNTIME = Path(capi.__file__).parent
VERSION = capi.wasmtime_version()

# C function -> (argument type names, result type name or None), as wasmtime-py 50
# declares them; capi's callers pass exactly these.
C_SIGNATURES: dict[str, tuple[list[str], str | None]] = {
    "wasmtime_component_func_call": (
        [
            "LP_wasmtime_component_func",
            "LP_wasmtime_context",
            "LP_wasmtime_component_val",
            "c_ulong",
            "LP_wasmtime_component_val",
            "c_ulong",
        ],
        "LP_wasmtime_error",
    ),
    "wasmtime_component_val_new": (["LP_wasmtime_component_val"], "LP_wasmtime_component_val"),
    "wasmtime_component_val_delete": (["LP_wasmtime_component_val"], None),
    "wasmtime_component_func_type_async": (["LP_wasmtime_component_func_type_t"], "c_bool"),
    "wasmtime_component_vallist_new_uninit": (["LP_wasmtime_component_vallist", "c_ulong"], None),
    "wasmtime_component_valtuple_new_uninit": (
        ["LP_wasmtime_component_valtuple", "c_ulong"],
        None,
    ),
    "wasmtime_component_valrecord_new_uninit": (
        ["LP_wasmtime_component_valrecord", "c_ulong"],
        None,
    ),
    "wasmtime_component_valflags_new_uninit": (
        ["LP_wasmtime_component_valflags", "c_ulong"],
        None,
    ),
    "wasmtime_context_set_epoch_deadline": (["LP_wasmtime_context", "c_ulong"], None),
    "wasmtime_context_set_fuel": (["LP_wasmtime_context", "c_ulong"], "LP_wasmtime_error"),
    "wasmtime_component_linker_instance_add_func": (
        [
            "LP_wasmtime_component_linker_instance_t",
            "LP_c_char",
            "c_ulong",
            "CFunctionType",
            "c_void_p",
            "CFunctionType",
        ],
        "LP_wasmtime_error",
    ),
    "wasmtime_error_new": (["LP_c_char"], "LP_wasmtime_error"),
    "wasmtime_component_resource_any_drop": (
        ["LP_wasmtime_context", "LP_wasmtime_component_resource_any"],
        "LP_wasmtime_error",
    ),
    "wasmtime_store_epoch_deadline_callback": (
        ["LP_wasmtime_store", "CFunctionType", "c_void_p", "CFunctionType"],
        None,
    ),
}


def _changed(what: str) -> str:
    return (
        f"wasmtime-py {VERSION}: internal {what} changed; airssys_plugins/runtime/capi.py "
        "relies on it, update capi.py (and this test) for this wasmtime-py"
    )


def _name(t: object) -> str | None:
    return None if t is None else getattr(t, "__name__", repr(t))


@pytest.mark.parametrize("name", sorted(C_SIGNATURES))
def test_c_function_signature(name: str) -> None:
    """Each C function capi calls is a ctypes function of wasmtime-py's dll, typed as before."""
    assert hasattr(ffi, "dll"), _changed("wasmtime._ffi.dll")
    try:
        func = getattr(ffi.dll, name)
    except AttributeError:
        pytest.fail(_changed(f"C function {name} (missing from the library)"))
    assert isinstance(func, ctypes._CFuncPtr), _changed(f"{name} (not a ctypes function)")
    assert func is capi.C_FUNCTIONS[name], _changed(f"{name} (capi holds another object)")
    argtypes, restype = C_SIGNATURES[name]
    actual = [_name(a) for a in func.argtypes or ()]
    assert actual == argtypes, _changed(f"{name}.argtypes: {actual}, expected {argtypes}")
    assert _name(func.restype) == restype, _changed(f"{name}.restype: {_name(func.restype)}")
    assert set(capi.C_FUNCTIONS) == set(C_SIGNATURES)


def test_byte_vec_new_is_capis_own_copy() -> None:
    """capi's wasm_byte_vec_new takes (void*, size_t, char*) and leaves wasmtime-py's alone."""
    assert hasattr(ffi, "wasm_byte_vec_t"), _changed("wasmtime._ffi.wasm_byte_vec_t")
    f = capi.byte_vec_new
    assert [_name(a) for a in f.argtypes] == ["c_void_p", "c_ulong", "c_char_p"]
    assert f is not ffi.dll.wasm_byte_vec_new, _changed("dll[...] returns a cached function")
    vec = ffi.wasm_byte_vec_t()
    f(ctypes.byref(vec), 3, b"a\0b")
    assert ctypes.string_at(vec.data, vec.size) == b"a\0b"
    ffi.wasm_byte_vec_delete(ctypes.byref(vec))


def test_value_structs() -> None:
    """The component value struct has kind and payload fields; callbacks have their type."""
    for name in ("wasmtime_component_val_t", "wasmtime_component_valrecord_entry"):
        t = getattr(ffi, name, None)
        assert isinstance(t, type), _changed(name)
        assert issubclass(t, ctypes.Structure), _changed(name)
    fields = [f[0] for f in ffi.wasmtime_component_val_t._fields_]
    assert fields == ["kind", "of"], _changed(f"wasmtime_component_val_t fields {fields}")
    for union_field in ("u8", "s64", "f64", "string", "list", "record", "variant"):
        assert hasattr(capi.VAL().of, union_field), _changed(f"val_t.of.{union_field}")
    cb = getattr(ffi, "wasmtime_component_func_callback_t", None)
    assert cb is not None, _changed("func_callback_t")
    assert issubclass(cb, ctypes._CFuncPtr), _changed("func_callback_t")
    assert len(cb._argtypes_) == 7, _changed(f"func_callback_t arity {len(cb._argtypes_)}")
    assert capi.VAL is ffi.wasmtime_component_val_t


def test_object_internals() -> None:
    """Store._context, Func._func, LinkerInstance.ptr and WasmtimeError._from_ptr work."""
    assert callable(getattr(Store, "_context", None)), _changed("Store._context")
    assert inspect.ismethod(getattr(WasmtimeError, "_from_ptr", None)), _changed(
        "WasmtimeError._from_ptr (a classmethod)"
    )
    assert callable(getattr(LinkerInstance, "ptr", None)), _changed("LinkerInstance.ptr")
    engine = Engine()
    store = Store(engine)
    context = capi.store_context(store)
    assert isinstance(context, ctypes.POINTER(ffi.wasmtime_context_t)), _changed(
        f"Store._context() returns {type(context).__name__}"
    )
    wat = '(component (core module $m (func (export "f"))) (core instance $i (instantiate $m))'
    wat += ' (func (export "f") (canon lift (core func $i "f"))))'
    component = Component(engine, wat)
    linker = Linker(engine)
    with linker.root() as root:
        assert isinstance(capi.linker_instance_handle(root), ctypes._Pointer), _changed(
            "LinkerInstance.ptr() result"
        )
    instance = linker.instantiate(store, component)
    func = instance.get_func(store, "f")
    assert isinstance(func, Func)
    handle = capi.func_handle(func)
    assert isinstance(handle, ffi.wasmtime_component_func_t), _changed(
        f"Func._func is {type(handle).__name__}"
    )
    # The two together make a call, as instance.py makes it.
    err = capi.call(ctypes.byref(handle), context, None, 0, None, 0)
    assert not err
    error = capi.error_from_ptr(ffi.dll.wasmtime_error_new(b"boom"))
    assert isinstance(error, WasmtimeError), _changed("_from_ptr")
    assert "boom" in str(error), _changed("_from_ptr")
    assert capi.error_new("x") != 0
    store.close()
    assert wasmtime.__name__ == "wasmtime"


PRIVATE_ATTRIBUTES = frozenset({"_context", "_func", "_from_ptr", "_ffi", "_bindings", "ptr"})


def _private_uses(path: Path) -> list[str]:
    """Imports of wasmtime's private modules and uses of the private attributes, in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith("wasmtime._") or (
                node.module.startswith("wasmtime")
                and any(a.name.startswith("_") for a in node.names)
            ):
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found.extend(
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith("wasmtime._")
            )
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in PRIVATE_ATTRIBUTES
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ):  # self._context and the like are the project's own attributes
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_only_capi_uses_wasmtime_internals() -> None:
    """No runtime module but capi.py imports wasmtime._ffi or uses a private attribute."""
    offenders = {
        p.name: uses
        for p in sorted(RUNTIME.glob("*.py"))
        if p.name != "capi.py" and (uses := _private_uses(p))
    }
    assert offenders == {}, f"move these uses of wasmtime-py internals into capi.py: {offenders}"
    assert _private_uses(RUNTIME / "capi.py")  # the check sees what it looks for


def test_private_use_check_catches_each_form(tmp_path: Path) -> None:
    """The check finds an import of _ffi and each private attribute."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from wasmtime import _ffi as ffi\nimport wasmtime._bindings\n"
        "s._context()\nf._func\nE._from_ptr(p)\nt.ptr()\nself._context\n"
    )
    assert len(_private_uses(sample)) == 6
