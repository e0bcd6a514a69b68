"""Criteo parsing and preprocessing: exact values, malformed lines, the reference's numbering, the cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from loadgen.data import DataError
from recommendation import data

REPO = Path(__file__).resolve().parents[2]
GOOD = "\t".join(["1", "5", "-2", "", "0", "12345678", "1", "2", "3", "4", "5", "6", "7", "8",
                  "a1b2c3d4", "", "FFFFFFFF", "0", "7f"] + ["1"] * 21)


def reference_parse(line: str):
    """What the reference's per-line loop makes of one line (blanks are 0, categories are int(x, 16))."""
    f = line.rstrip("\n").split("\t")
    return int(f[0]), [int(x or 0) for x in f[1:14]], [int(x or "0", 16) for x in f[14:]]


def test_parse_matches_the_reference_per_line_reading(raw):
    text = (raw / "day_3").read_text()
    p = data.parse_block(text.encode())
    for i, line in enumerate(text.splitlines()):
        label, dense, sparse = reference_parse(line)
        assert (p.label[i], p.dense[i].tolist(), p.sparse[i].tolist()) == (label, dense, sparse)
    assert p.bad == {} and p.lines == len(text.splitlines())


def test_parse_edge_values():
    p = data.parse_block((GOOD + "\n").encode())
    assert p.label.tolist() == [1]
    assert p.dense[0].tolist()[:6] == [5, -2, 0, 0, 12345678, 1]
    assert p.sparse[0].tolist()[:5] == [0xA1B2C3D4, 0, 0xFFFFFFFF, 0, 0x7F]


def test_word_at_a_time_digit_checks_judge_every_byte_in_every_place():
    """Against a per-character check, on fields of every width; the hex conversion against int(x, 16)."""
    rng = np.random.default_rng(0)
    fields = [bytes([b]) * w for b in range(256) for w in range(1, 9)]  # each byte value in every position
    fields += [bytes(rng.choice(list(b"0123456789abcdefABCDEFgG/:@`\x80\xff"), w).tolist()) for w in range(1, 9)
               for _ in range(300)]
    words = np.frombuffer(b"".join(f.ljust(8, b"\t") for f in fields), dtype="<u8")
    widths = np.array([len(f) for f in fields])

    def parses(f: bytes, base: int) -> bool:
        return all(chr(c) in "0123456789abcdefABCDEF"[:base + 6 * (base == 16)] for c in f)

    for base in (10, 16):
        got = data._digits_ok(words, widths, hex_digits=base == 16)
        want = [parses(f, base) for f in fields]
        assert got.tolist() == want, base
    hexes = [i for i, f in enumerate(fields) if parses(f, 16)]
    assert data._hex8(words[hexes], widths[hexes]).tolist() == [int(fields[i], 16) for i in hexes]


@pytest.mark.parametrize("line, kind", [
    ("", "empty line"),
    ("\r", "empty line"),
    (GOOD + "\textra", "wrong column count"),
    ("\t".join(GOOD.split("\t")[:-1]), "wrong column count"),
    (GOOD.replace("a1b2c3d4", "a1b2xyz4"), "non-hex categorical value"),
    (GOOD.replace("a1b2c3d4", "123456789"), "non-hex categorical value"),
    (GOOD.replace("12345678", "12a45"), "non-integer dense value"),
    ("2" + GOOD[1:], "bad label"),
])
def test_malformed_lines_are_counted_with_their_line(line, kind):
    p = data.parse_block(f"{GOOD}\n{line}\n{GOOD}\n".encode())
    assert p.lines == 3 and len(p.label) == 2
    assert p.bad == {kind: [2]}


def _day_files(folder: Path, bad_lines: dict[int, str]) -> Path:
    folder.mkdir()
    for day in range(24):
        lines = [GOOD] * 50
        for n, text in bad_lines.items():
            if day == 5:
                lines[n] = text
        (folder / f"day_{day}").write_text("\n".join(lines) + "\n")
    return folder


def test_too_many_malformed_lines_stop_the_run_naming_file_and_line(tmp_path):
    raw = _day_files(tmp_path / "raw", {3: "1" + GOOD[1:] + "\tx", 7: "junk"})
    with pytest.raises(DataError) as err:
        data.preprocess(raw, tmp_path / "out", data.Settings(max_malformed=0.001), workers=1, progress=False)
    message = str(err.value)
    assert "2 of 1200 lines" in message and "day_5: 2 line(s) with wrong column count (line 4, 8)" in message
    assert not any(p.name.endswith("cache.json") for p in (tmp_path / "out").rglob("*"))  # nothing half-written


def test_malformed_lines_under_the_threshold_are_skipped_and_reported(tmp_path, capsys):
    raw = _day_files(tmp_path / "raw", {3: GOOD.replace("a1b2c3d4", "a1b2xyz4")})
    out = data.preprocess(raw, tmp_path / "out", data.Settings(max_malformed=0.01), workers=1, progress=False)
    assert "day_5: 1 line(s) with non-hex categorical value (line 4)" in capsys.readouterr().err
    assert sum(len(data.read_rows(data.split_file(out, s))) for s in ("train", "test", "val")) == 1199


def test_preprocess_follows_the_reference(raw, processed):
    """First-appearance numbering over days in order, clipped dense, day_23 split in halves."""
    dicts = [{} for _ in range(26)]
    expected = {"train": [], "test_day": []}
    for day in range(24):
        for line in (raw / f"day_{day}").read_text().splitlines():
            label, dense, sparse = reference_parse(line)
            ids = [dicts[j].setdefault(v % 5000, len(dicts[j])) for j, v in enumerate(sparse)]
            expected["train" if day < 23 else "test_day"].append([label, *np.maximum(dense, 0), *ids])
    test_day = np.array(expected["test_day"])
    half = (len(test_day) + 1) // 2
    np.testing.assert_array_equal(data.read_rows(data.split_file(processed, "train")), expected["train"])
    np.testing.assert_array_equal(data.read_rows(data.split_file(processed, "test")), test_day[:half])
    np.testing.assert_array_equal(data.read_rows(data.split_file(processed, "val")), test_day[half:])
    assert data.table_sizes(processed) == [len(d) for d in dicts]


def test_worker_count_and_sub_sampling_are_deterministic(raw, tmp_path):
    s = data.Settings(max_ind_range=5000, sub_sample_rate=0.875, chunk_bytes=16 << 10)
    one = data.preprocess(raw, tmp_path / "a", s, workers=1, progress=False)
    two = data.preprocess(raw, tmp_path / "b", s, workers=2, progress=False)
    for split in ("train", "test", "val"):
        a, b = data.read_rows(data.split_file(one, split)), data.read_rows(data.split_file(two, split))
        np.testing.assert_array_equal(a, b)
    train = data.read_rows(data.split_file(one, "train"))
    assert 0.5 < train[:, 0].mean() < 1.0  # most negatives dropped, every positive kept


def test_bin_loader_and_row_loader_give_the_same_batches(processed):
    path = data.split_file(processed, "train")
    a = list(data.BinLoader(path, 64, 5000, shuffle=True, seed=3))
    b = list(data.RowLoader(path, 64, 5000, shuffle=True, seed=3))
    assert len(a) == len(b) > 1
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    dense, sparse, label = a[0]
    assert dense.dtype == np.float32 and sparse.dtype == np.int64 and set(np.unique(label)) <= {0.0, 1.0}


def test_kaggle_train_txt_is_cut_into_seven_days(raw, tmp_path):
    text = "".join((raw / f"day_{d}").read_text() for d in range(3))  # 1,200 lines
    (tmp_path / "train.txt").write_text(text)
    out = data.preprocess(tmp_path, tmp_path / "out", data.Settings(dataset="kaggle", max_ind_range=5000),
                          workers=1, progress=False)
    assert np.load(out / "day_day_count.npz")["total_per_file"].tolist() == [172] * 3 + [171] * 4
    assert len(data.read_rows(data.split_file(out, "test"))) == 86
    assert data.split_file(out, "train").name == "kaggleAdDisplayChallenge_processed_train.bin"


def test_cache_killed_midway_then_rerun_matches_an_uninterrupted_run(raw, tmp_path):
    code = ("import sys; from recommendation import data; data.preprocess(sys.argv[1], sys.argv[2], "
            "data.Settings(max_ind_range=5000, chunk_bytes=4096), workers=1, progress=False)")
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", code, str(raw), str(killed)], cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once the build has written part of its output
        partial = list(killed.glob(".*/*_processed_train.bin")) if killed.exists() else []
        if partial and partial[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(killed.glob("*/cache.json"))  # no entry under a real key
    s = data.Settings(max_ind_range=5000, chunk_bytes=4096)
    rerun = data.preprocess(raw, killed, s, workers=1, progress=False)
    clean = data.preprocess(raw, tmp_path / "clean", s, workers=1, progress=False)
    assert rerun.name == clean.name
    for name in ("train", "test", "val"):
        assert data.split_file(rerun, name).read_bytes() == data.split_file(clean, name).read_bytes()


def test_verify_names_the_bad_file(raw, tmp_path):
    import shutil

    copy = Path(shutil.copytree(raw, tmp_path / "copy"))
    with open(copy / "day_7", "a") as f:
        f.write(GOOD + "\n")
    proc = subprocess.run([str(REPO / "recommendation" / "verify_dataset.sh"), str(copy)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHON=sys.executable))
    assert proc.returncode == 1 and "day_7" in proc.stderr and "day_6" not in proc.stderr


def test_first_appearance_numbering_is_the_same_with_and_without_a_dense_table():
    rng = np.random.default_rng(0)
    sparse, dense = data.FirstSeen(-1), data.FirstSeen(1 << 20)  # no hashing: sorted keys; hashing: a dense table
    numbering: dict[int, int] = {}  # the reference's dictionary
    for _ in range(30):
        block = rng.integers(0, 5000, rng.integers(1, 400)).astype(np.uint32)  # values come back across blocks
        firsts = block[np.sort(np.unique(block, return_index=True)[1])]
        for v in firsts.tolist():
            numbering.setdefault(v, len(numbering))
        sparse.add(firsts)
        dense.add(firsts)
        want = [numbering[v] for v in block.tolist()]
        assert sparse.lookup(block).tolist() == want == dense.lookup(block).tolist()
    assert sparse.count == dense.count == len(numbering)
