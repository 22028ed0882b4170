"""Plugin authoring: ``airssys-plugins new`` (project skeletons in Python, JavaScript, C
and WAT) and ``airssys-plugins build`` (the right toolchain, the digest in the manifest)."""

from ._common import ScaffoldError as ScaffoldError
from ._project import BuiltPlugin as BuiltPlugin
from ._project import build_plugin as build_plugin
from ._project import set_manifest_digest as set_manifest_digest
from ._scaffold import LANGUAGES as LANGUAGES
from ._scaffold import Language as Language
from ._scaffold import NewPlugin as NewPlugin
from ._scaffold import new_plugin as new_plugin

__all__ = [
    "LANGUAGES",
    "BuiltPlugin",
    "Language",
    "NewPlugin",
    "ScaffoldError",
    "build_plugin",
    "new_plugin",
    "set_manifest_digest",
]
