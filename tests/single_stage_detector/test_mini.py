"""single_stage_detector.mini: the COCO-format mini set's command line and its default location."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadgen.data import annotated_image_ids, annotation_file, load_annotations
from single_stage_detector import mini

SMALL = ["--train-images", "6", "--val-images", "3", "--min-side", "64", "--max-side", "96"]


def run(argv):
    return mini.main(mini.get_args_parser().parse_args(argv))


def test_cli_builds_a_coco_set_then_leaves_it(tmp_path, capsys):
    out = tmp_path / "mini"
    assert run(["--output", str(out), *SMALL]) == 0
    assert "6 train and 3 val images in COCO 2017 format" in capsys.readouterr().out
    for split, count in (("train", 6), ("val", 3)):
        coco = load_annotations(annotation_file(out, split))
        assert len(coco.getImgIds()) == count and annotated_image_ids(coco)
    first = (out / "train2017" / "000000000003.jpg").stat().st_mtime_ns
    assert run(["--output", str(out), *SMALL]) == 0
    assert "already built" in capsys.readouterr().out
    assert mini.ensure(out) == out  # finished: neither rebuilt nor grown to the default size
    assert (out / "train2017" / "000000000003.jpg").stat().st_mtime_ns == first
    assert len(list((out / "train2017").iterdir())) == 6
    assert run(["--output", str(out), *SMALL, "--seed", "1", "--force"]) == 0
    assert (out / "train2017" / "000000000003.jpg").stat().st_mtime_ns != first


def test_default_location_is_under_build():
    assert mini.DEFAULT_OUT.parts[-3:] == ("build", "single_stage_detector", "mini")


@pytest.mark.parametrize(("argv", "named"), [
    (["--min-side", "300", "--max-side", "200"], "--min-side 300 is larger than --max-side 200"),
    (["--train-images", "1"], "--train-images"),
    (["--val-images", "0"], "--val-images"),
])
def test_bad_usage_is_one_line_exit_2(tmp_path, argv, named):
    proc = subprocess.run([sys.executable, "-m", "single_stage_detector.mini", "--output", str(tmp_path / "m"), *argv],
                          capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and named in lines[0], proc.stderr
    assert not (tmp_path / "m").exists()


def test_unwritable_output_is_one_line_exit_1(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run(["--output", str(blocker / "mini"), *SMALL]) == 1
    assert capsys.readouterr().err.startswith("python -m single_stage_detector.mini: error: ")


def test_every_flag_states_its_default():
    for action in mini.get_args_parser()._actions:
        if action.help and action.dest != "help":
            assert action.help.endswith(")") and "(default: " in action.help, action.dest
