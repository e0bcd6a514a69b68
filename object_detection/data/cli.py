"""``python -m object_detection.data``: ``download`` (COCO 2017 archives and the pretrained ResNet-50) and
``verify`` (image counts, annotation files, every image decoded, checksums); the command is the shared
``loadgen.data.coco_cli``'s, with this folder's coco_files.json."""

from __future__ import annotations

from loadgen.data.coco_cli import CocoFilesCommand
from object_detection.data.layout import FILES_MANIFEST

PROG = "python -m object_detection.data"
COMMAND = CocoFilesCommand(PROG, __doc__, FILES_MANIFEST, "ResNet-50")
get_args_parser, download, check, main = COMMAND.get_args_parser, COMMAND.download, COMMAND.check, COMMAND.main
