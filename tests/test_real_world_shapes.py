"""Shapes found in real components (the jco repository's fixtures, measured by
``bench/jco_coverage.py``), rebuilt here from WAT so that CI needs no third-party binary.

wit-bindgen's runtime test components import the interface they export and check what the
host's functions return; a host function whose annotations differ from the import (the
``many-arguments`` shape: sixteen ``u64`` parameters) used to be linked unchecked, and the
first call failed with an unrelated ``IndexError``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest
import wasmtime

from airssys_plugins import (
    Capabilities,
    PluginHost,
    PluginLoadError,
    PluginTrap,
    f32,
    u8,
    u32,
    u64,
    wit_binding,
)
from airssys_plugins.contract import wit
from airssys_plugins.host.registry import HostFunctionRegistry
from airssys_plugins.runtime import ComponentImage

U64S = " ".join(f'(param "a{i}" u64)' for i in range(1, 17))

# world { import imports: interface { many-arguments: func(a1..a16: u64); }
#         export many-arguments: func(a1..a16: u64); }  -- the export calls the import.
MANY_ARGUMENTS = f"""(component
  (import "imports" (instance $imports
    (export "many-arguments" (func {U64S}))))
  (core module $m
    (import "imports" "many-arguments" (func $many (param {"i64 " * 16})))
    (func (export "many-arguments") (param {"i64 " * 16})
      {" ".join(f"(local.get {i})" for i in range(16))}
      (call $many)))
  (core func $lowered (canon lower (func $imports "many-arguments")))
  (core instance $deps (export "many-arguments" (func $lowered)))
  (core instance $i (instantiate $m (with "imports" (instance $deps))))
  (func $run {U64S} (canon lift (core func $i "many-arguments")))
  (export "many-arguments" (func $run)))
"""

# The same, with an interface imported in two versions side by side (wit-bindgen's
# `versions` shape): `x` in both, `y` only in 0.1.0, `z` only in 0.2.0.
VERSIONS = """(component
  (import "test:dep/test@0.1.0" (instance $v1
    (export "x" (func (result f32)))
    (export "y" (func (param "a" f32) (result f32)))))
  (import "test:dep/test@0.2.0" (instance $v2
    (export "x" (func (result f32)))
    (export "z" (func (param "a" f32) (param "b" f32) (result f32)))))
  (core module $m (func (export "run") (param i32) (result i32) local.get 0))
  (core instance $i (instantiate $m))
  (func $run (param "a" u32) (result u32) (canon lift (core func $i "run")))
  (export "run" (func $run)))
"""

# A p3 component importing an `async func` (the `async-round-trip-*` shape).
ASYNC_IMPORT = """(component
  (import "local:local/baz" (instance
    (export "foo" (func async (param "s" string) (result string)))))
  (core module $m (func (export "run") (param i32) (result i32) local.get 0))
  (core instance $i (instantiate $m))
  (func $run (param "a" u32) (result u32) (canon lift (core func $i "run")))
  (export "run" (func $run)))
"""


def _image(tmp_path: Path, wat: str, name: str) -> ComponentImage:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return ComponentImage.load(name, path, cache=False)


def _registry(tmp_path: Path, *provided: tuple[str, Callable[..., Any], str | None]) -> Any:
    registry = HostFunctionRegistry(
        lambda: wit.PackageId("calc", "hooks", "1.0.0"),
        kv_path=tmp_path / "kv.sqlite",
        kv_timeout=1.0,
    )
    for interface, func, name in provided:
        registry.provide(func, interface=interface, name=name)
    return registry


def many_arguments(
    a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64, a7: u64, a8: u64,
    a9: u64, a10: u64, a11: u64, a12: u64, a13: u64, a14: u64, a15: u64, a16: u64,
) -> None:  # fmt: skip
    """The host side of wit-bindgen's many-arguments test."""


def test_matching_host_functions_pass_the_import_check(tmp_path: Path) -> None:
    """A host function with the component's own signature is accepted."""
    registry = _registry(tmp_path, ("imports", many_arguments, None))
    registry.check_imports("many", _image(tmp_path, MANY_ARGUMENTS, "many"))


def test_host_function_with_other_arity_is_refused(tmp_path: Path) -> None:
    """Sixteen arguments imported, one provided: refused naming the import and both sides."""

    def short(a: u32) -> u32:
        return a

    registry = _registry(tmp_path, ("imports", short, "many-arguments"))
    with pytest.raises(PluginLoadError) as info:
        registry.check_imports("many", _image(tmp_path, MANY_ARGUMENTS, "many"))
    message = str(info.value)
    assert info.value.plugin == "many"
    assert "imports#many-arguments: the component passes 16 argument(s)" in message
    assert "the host function takes 1" in message
    assert "component imports: func(a1: u64, a2: u64" in message
    assert "host provides:     func(a: u32) -> u32" in message


def test_host_function_with_another_type_is_refused(tmp_path: Path) -> None:
    """A parameter of another type is named, with its position and both types."""

    def typed_wrong(
        a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64, a7: u64, a8: u64,
        a9: u64, a10: u64, a11: u64, a12: u64, a13: u64, a14: u64, a15: u64, a16: str,
    ) -> None:  # fmt: skip
        pass

    registry = _registry(tmp_path, ("imports", typed_wrong, "many-arguments"))
    with pytest.raises(PluginLoadError, match=r"argument 16 \('a16'\) is u64, the host "
                       r"function's parameter 'a16' is string"):  # fmt: skip
        registry.check_imports("many", _image(tmp_path, MANY_ARGUMENTS, "many"))


def test_host_function_with_another_result_is_refused(tmp_path: Path) -> None:
    """A result the component does not expect is named."""

    def returns(
        a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64, a7: u64, a8: u64,
        a9: u64, a10: u64, a11: u64, a12: u64, a13: u64, a14: u64, a15: u64, a16: u64,
    ) -> u32:  # fmt: skip
        return 0

    registry = _registry(tmp_path, ("imports", returns, "many-arguments"))
    with pytest.raises(
        PluginLoadError, match="the component expects nothing back, the host function returns u32"
    ):
        registry.check_imports("many", _image(tmp_path, MANY_ARGUMENTS, "many"))


def test_missing_function_of_a_provided_interface_is_refused(tmp_path: Path) -> None:
    """An imported function the host does not provide says how to provide it (wasmtime's
    own words were `function implementation is missing`, without the function's name)."""

    def other(a: u32) -> u32:
        return a

    registry = _registry(tmp_path, ("imports", other, None))
    with pytest.raises(PluginLoadError) as info:
        registry.check_imports("many", _image(tmp_path, MANY_ARGUMENTS, "many"))
    assert (
        "imports#many-arguments: imported by the component, not provided by the host "
        "(provide it: @host.provide(interface='imports', name='many-arguments'))"
    ) in str(info.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Two versions imported, each served wrongly: both problems in one error."""

    def x() -> float:  # f64, the component imports f32
        return 1.0

    registry = _registry(
        tmp_path, ("test:dep/test@0.1.0", x, None), ("test:dep/test@0.2.0", x, None)
    )
    with pytest.raises(PluginLoadError) as info:
        registry.check_imports("versions", _image(tmp_path, VERSIONS, "versions"))
    message = str(info.value)
    assert "(4 problem(s))" in message
    assert "test:dep/test@0.1.0#x: the component expects f32 back" in message
    assert "test:dep/test@0.1.0#y: imported by the component, not provided" in message
    assert "test:dep/test@0.2.0#x: the component expects f32 back" in message
    assert "test:dep/test@0.2.0#z: imported by the component, not provided" in message


def test_two_versions_of_an_interface_are_checked_separately(tmp_path: Path) -> None:
    """Each imported version is served by the host's compatible version, not mixed up."""

    def x() -> f32:
        return 1.0

    def y(a: f32) -> f32:
        return a

    def z(a: f32, b: f32) -> f32:
        return a + b

    registry = _registry(
        tmp_path,
        ("test:dep/test@0.1.3", x, None),
        ("test:dep/test@0.1.3", y, None),
        ("test:dep/test@0.2.0", x, None),
        ("test:dep/test@0.2.0", z, None),
    )
    registry.check_imports("versions", _image(tmp_path, VERSIONS, "versions"))


def test_import_of_a_version_the_host_lacks_is_refused(tmp_path: Path) -> None:
    """An imported 0.2.0 interface is not served by the host's 0.1.x functions."""

    def x() -> f32:
        return 1.0

    def y(a: f32) -> f32:
        return a

    registry = _registry(
        tmp_path, ("test:dep/test@0.1.0", x, None), ("test:dep/test@0.1.0", y, None)
    )
    with pytest.raises(
        PluginLoadError, match=r"test:dep/test@0.2.0#x: the host provides only test:dep/test@0.1.0"
    ):
        registry.check_imports("versions", _image(tmp_path, VERSIONS, "versions"))


def test_async_import_is_refused_in_the_users_terms(tmp_path: Path) -> None:
    """An `async func` import cannot be served by a (sync) host function: said at load,
    not as wasmtime's `type mismatch with async` when instantiating."""

    def foo(s: str) -> str:
        return s

    registry = _registry(tmp_path, ("local:local/baz", foo, None))
    with pytest.raises(PluginLoadError) as info:
        registry.check_imports("p3", _image(tmp_path, ASYNC_IMPORT, "p3"))
    assert (
        "local:local/baz#foo: imported as an `async func` (component-model async), which "
        "wasmtime-py host functions cannot serve"
    ) in str(info.value)


# wit-bindgen's runtime test shape: the component imports the interface it exports, and
# its `test-imports` export calls the import and traps unless the host answers right.
SAME_INTERFACE_BOTH_WAYS = """(component
  (import "test:numbers/test" (instance $imp
    (export "roundtrip-u8" (func (param "a" u8) (result u8)))))
  (core func $lowered (canon lower (func $imp "roundtrip-u8")))
  (core instance $host (export "roundtrip-u8" (func $lowered)))
  (core module $m
    (import "host" "roundtrip-u8" (func $rt (param i32) (result i32)))
    (func (export "roundtrip-u8") (param i32) (result i32) local.get 0)
    (func (export "test-imports")
      (if (i32.ne (call $rt (i32.const 255)) (i32.const 255)) (then unreachable))))
  (core instance $i (instantiate $m (with "host" (instance $host))))
  (func $rt (param "a" u8) (result u8) (canon lift (core func $i "roundtrip-u8")))
  (func $ti (canon lift (core func $i "test-imports")))
  (instance $exp (export "roundtrip-u8" (func $rt)))
  (export "test:numbers/test" (instance $exp))
  (export "test-imports" (func $ti)))
"""

# Two versions of one interface imported side by side (wit-bindgen's `versions` shape):
# run() = v0.1.x() + 10 * v0.2.x().
TWO_VERSIONS = """(component
  (import "test:dep/test@0.1.0" (instance $v1 (export "x" (func (result f32)))))
  (import "test:dep/test@0.2.0" (instance $v2 (export "x" (func (result f32)))))
  (core func $x1 (canon lower (func $v1 "x")))
  (core func $x2 (canon lower (func $v2 "x")))
  (core instance $host (export "x1" (func $x1)) (export "x2" (func $x2)))
  (core module $m
    (import "host" "x1" (func $x1 (result f32)))
    (import "host" "x2" (func $x2 (result f32)))
    (func (export "run") (result f32)
      (f32.add (call $x1) (f32.mul (f32.const 10) (call $x2)))))
  (core instance $i (instantiate $m (with "host" (instance $host))))
  (func $run (result f32) (canon lift (core func $i "run")))
  (export "run" (func $run)))
"""

calc = pluggy.HookspecMarker("calc")


class NumbersHooks:
    @calc
    @wit_binding("test:numbers/test#roundtrip-u8")
    def roundtrip_u8(self, a: u8) -> u8: ...

    @calc
    @wit_binding("test-imports")
    def test_imports(self) -> None: ...


class RunHooks:
    @calc
    @wit_binding("run")
    def run(self) -> f32: ...


def _host(specs: type, interfaces: set[str]) -> tuple[pluggy.PluginManager, PluginHost]:
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(specs)
    return pm, PluginHost(pm, grants={"c": Capabilities(interfaces=interfaces)})


def _wasm(tmp_path: Path, wat: str, name: str) -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


@pytest.mark.parametrize(("answer", "passes"), [(255, True), (254, False)], ids=["right", "wrong"])
def test_an_interface_imported_and_exported_under_one_name(
    tmp_path: Path, answer: int, passes: bool
) -> None:
    """The host serves the import and calls the export of the same interface; the guest's
    own check of the host's answer decides whether `test-imports` traps."""
    pm, host = _host(NumbersHooks, {"test"})
    with host:

        @host.provide(interface="test:numbers/test", name="roundtrip-u8")
        def roundtrip(a: u8) -> u8:
            return answer

        plugin = host.load(
            _wasm(tmp_path, SAME_INTERFACE_BOTH_WAYS, "numbers"),
            name="c",
            requests=Capabilities(interfaces={"test"}),
        )
        assert plugin.hooks == {
            "roundtrip_u8": "test:numbers/test#roundtrip-u8",
            "test_imports": "test-imports",
        }
        assert pm.hook.roundtrip_u8(a=7) == [7]
        if passes:
            assert pm.hook.test_imports() == []
        else:
            with pytest.raises(PluginTrap, match="unreachable"):
                pm.hook.test_imports()


def test_two_versions_of_an_import_are_served_apart(tmp_path: Path) -> None:
    """Each version of an interface imported side by side reaches its own host function."""
    pm, host = _host(RunHooks, {"test"})
    with host:

        @host.provide(interface="test:dep/test@0.1.0", name="x")
        def x1() -> f32:
            return 1.0

        @host.provide(interface="test:dep/test@0.2.0", name="x")
        def x2() -> f32:
            return 2.0

        host.load(
            _wasm(tmp_path, TWO_VERSIONS, "versions"),
            name="c",
            requests=Capabilities(interfaces={"test"}),
        )
        assert pm.hook.run() == [21.0]


class ManyHooks:
    @calc
    @wit_binding("many-arguments")
    def many_arguments(
        self, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64, a7: u64, a8: u64,
        a9: u64, a10: u64, a11: u64, a12: u64, a13: u64, a14: u64, a15: u64, a16: u64,
    ) -> None: ...  # fmt: skip


def test_host_load_refuses_a_provided_function_that_does_not_fit_the_import(
    tmp_path: Path,
) -> None:
    """host.load checks the component's imports against the functions the host provides
    before instantiating: a function of the wrong arity is a PluginLoadError naming it
    (wasmtime links host functions untyped: the first call used to fail with IndexError)."""
    wasm = _wasm(tmp_path, MANY_ARGUMENTS, "many")
    _pm, host = _host(ManyHooks, {"imports"})
    with host:

        @host.provide(interface="imports", name="many-arguments")
        def short(a: u32) -> u32:
            return a

        with pytest.raises(PluginLoadError, match="the component passes 16 argument"):
            host.load(wasm, name="c", requests=Capabilities(interfaces=frozenset({"imports"})))
