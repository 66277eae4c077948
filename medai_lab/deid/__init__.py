"""PS3.15 de-identification: the Basic Profile and all ten options, keyed and audited.

``deidentify_tree`` for folders, ``deidentify_dataset`` / ``deidentify_file`` for single
objects, :class:`Deidentifier` for the engine. See the README section "De-identification".
"""

from medai_lab.deid.api import Quarantined, deidentify_dataset, deidentify_file
from medai_lab.deid.engine import Deidentifier, Outcome
from medai_lab.deid.keys import default_key_file, load_or_create_key
from medai_lab.deid.profile import OptionError, Profile, option_names
from medai_lab.deid.report import DeidReport
from medai_lab.deid.tree import deidentify_tree

__all__ = [
    "DeidReport",
    "Deidentifier",
    "OptionError",
    "Outcome",
    "Profile",
    "Quarantined",
    "default_key_file",
    "deidentify_dataset",
    "deidentify_file",
    "deidentify_tree",
    "load_or_create_key",
    "option_names",
]
