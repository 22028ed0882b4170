"""Plugin authoring: ``airssys-plugins new`` (project skeletons in Python, JavaScript, C
and WAT) and ``airssys-plugins build`` (the right toolchain, the digest in the manifest)."""

from .common import ScaffoldError as ScaffoldError
from .project import BuiltPlugin as BuiltPlugin
from .project import build_plugin as build_plugin
from .project import set_manifest_digest as set_manifest_digest
from .scaffold import LANGUAGES as LANGUAGES
from .scaffold import Language as Language
from .scaffold import NewPlugin as NewPlugin
from .scaffold import new_plugin as new_plugin

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
