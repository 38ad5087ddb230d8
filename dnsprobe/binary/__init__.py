"""Binary inspection: ELF facts, Go build information and a verdict per runtime base image.

Pure Python (pyelftools); no Go toolchain, no Docker. `inspect_binary` is what `dnsprobe inspect` calls.
"""

from dnsprobe.binary.bases import BASES, BaseImage, Verdict, judge
from dnsprobe.binary.buildinfo import GoBuildInfo, parse_modinfo, read_build_info
from dnsprobe.binary.elf import ElfFacts
from dnsprobe.binary.inspection import Inspection, format_inspection, inspect_binary

__all__ = [
    "BASES",
    "BaseImage",
    "ElfFacts",
    "GoBuildInfo",
    "Inspection",
    "Verdict",
    "format_inspection",
    "inspect_binary",
    "judge",
    "parse_modinfo",
    "read_build_info",
]
