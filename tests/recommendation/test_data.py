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
from recommendation.data import parse

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
        got = parse._digits_ok(words, widths, hex_digits=base == 16)
        want = [parses(f, base) for f in fields]
        assert got.tolist() == want, base
    hexes = [i for i, f in enumerate(fields) if parses(f, 16)]
    assert parse._hex8(words[hexes], widths[hexes]).tolist() == [int(fields[i], 16) for i in hexes]


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


# --------------------------------------------------------- CRLF, truncated .gz, SIGKILL, usage errors
def test_crlf_lines_are_good_lines():
    lf = data.parse_block(f"{GOOD}\n{GOOD}\n".encode())
    crlf = data.parse_block(f"{GOOD}\r\n{GOOD}\r\n".encode())
    last = data.parse_block(f"{GOOD}\r\n{GOOD}\r".encode())  # the file's last line, without its \n
    for p in (crlf, last):
        assert p.bad == {} and p.lines == 2 and p.line_index.tolist() == [0, 1]
        for name in ("label", "dense", "sparse"):
            np.testing.assert_array_equal(getattr(p, name), getattr(lf, name))
    assert "CRLF line ending" not in data.MALFORMED_KINDS


def test_crlf_day_files_preprocess_like_lf_ones(raw, tmp_path):
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    for day in range(24):
        (crlf / f"day_{day}").write_bytes((raw / f"day_{day}").read_bytes().replace(b"\n", b"\r\n"))
    s = data.Settings(max_ind_range=5000, max_malformed=0.0)
    a = data.preprocess(raw, tmp_path / "a", s, workers=1, progress=False)
    b = data.preprocess(crlf, tmp_path / "b", s, workers=1, progress=False)
    for split in ("train", "test", "val"):
        assert data.split_file(a, split).read_bytes() == data.split_file(b, split).read_bytes()


def _gz_days(folder: Path, raw: Path, broken: dict[int, bytes]) -> Path:
    import gzip

    folder.mkdir()
    for day in range(24):
        body = gzip.compress((raw / f"day_{day}").read_bytes())
        (folder / f"day_{day}.gz").write_bytes(broken.get(day, body) if day not in broken else
                                               body[: len(body) // 2] if broken[day] == b"truncate" else
                                               body[:100] + broken[day] + body[100 + len(broken[day]):])
    return folder


@pytest.mark.parametrize("damage, workers", [(b"truncate", 2), (b"\xff" * 64, 1)], ids=["truncated", "corrupt"])
def test_a_damaged_gz_day_is_one_error_line_naming_it(raw, tmp_path, damage, workers):
    folder = _gz_days(tmp_path / "gz", raw, {3: damage})
    proc = subprocess.run([sys.executable, "-m", "recommendation.data", "preprocess", "--raw-dir", str(folder),
                           "--processed-dir", str(tmp_path / "out"), "--preprocess-workers", str(workers),
                           "--chunk-bytes", "65536"], capture_output=True, text=True, timeout=120, cwd=REPO)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{folder / 'day_3.gz'}: " in lines[0] and "error:" in lines[0]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "no partial folder left"


def test_sigkill_midway_leaves_no_worker_and_the_next_run_no_partial_folder(raw, tmp_path):
    from tests.loadgen.data_helpers import alive, kill_when

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "recommendation.data", "preprocess", "--raw-dir", str(raw),
                             "--processed-dir", str(out), "--preprocess-workers", "2", "--chunk-bytes", "2048",
                             "--max-ind-range", "5000"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def midway() -> bool:  # the partial folder exists and workers have been started
        from tests.loadgen.data_helpers import children

        return out.is_dir() and any(".partial-" in p.name for p in out.iterdir()) and len(children(proc.pid)) >= 2

    workers = kill_when(proc, midway)
    assert alive(workers, wait_s=10) == [], "worker processes outlived their killed parent"
    assert [p for p in out.iterdir() if ".partial-" in p.name], "the killed run left its partial folder"
    done = data.preprocess(raw, out, data.Settings(max_ind_range=5000), workers=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [done.name], "the stale partial folder was reclaimed"


@pytest.mark.parametrize("argv, fragment", [
    (["preprocess", "--raw-dir", "MISSING"], "no such file or folder"),
    (["preprocess", "--raw-dir", "RAW", "--max-ind-range", "0"], "--max-ind-range"),
    (["preprocess", "--raw-dir", "RAW", "--max-ind-range", "3000000000"], "--max-ind-range"),
    (["preprocess", "--raw-dir", "RAW", "--data-sub-sample-rate", "1"], "--data-sub-sample-rate"),
    (["preprocess", "--raw-dir", "RAW", "--data-sub-sample-rate", "nan"], "--data-sub-sample-rate"),
    (["preprocess", "--raw-dir", "RAW", "--max-malformed", "-0.5"], "--max-malformed"),
    (["preprocess", "--raw-dir", "RAW", "--preprocess-workers", "0"], "--preprocess-workers"),
    (["download", "--data-dir", "DEST", "--days", "30"], "--days"),
    (["download", "--data-dir", "DEST", "--days", "5-2"], "--days"),
    (["download", "--data-dir", "DEST", "--days", "x"], "--days"),
    (["download", "--data-dir", "DEST", "--manifest", "MISSING"], "no such file"),
    (["download", "--data-dir", "DEST", "--base-url", "mirror.example.org"], "--base-url"),
    (["verify", "--data-dir", "MISSING"], "no such folder"),
])
def test_bad_usage_is_one_line_and_exit_2(argv, fragment, raw, tmp_path, capsys):
    from tests.loadgen.data_helpers import assert_one_line_error, run_cli

    names = {"MISSING": tmp_path / "missing", "RAW": raw, "DEST": tmp_path / "dest"}
    code, lines = run_cli(data, [str(names.get(a, a)) for a in argv], capsys)
    assert_one_line_error(code, lines, 2, fragment)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("module, argv", [
    ("mini", ["--rows-per-day", "0"]),
    ("accuracy", ["--mlperf-accuracy-file", "MISSING"]),
])
def test_other_clis_refuse_bad_flags_in_one_line(module, argv, tmp_path, capsys):
    import importlib

    from tests.loadgen.data_helpers import assert_one_line_error, run_cli

    mod = importlib.import_module(f"recommendation.{module}")
    code, lines = run_cli(mod, [str(tmp_path / "missing") if a == "MISSING" else a for a in argv], capsys)
    assert_one_line_error(code, lines, 2, argv[0])


def test_accuracy_of_a_broken_log_is_one_line_and_exit_1(tmp_path, capsys):
    from recommendation import accuracy
    from tests.loadgen.data_helpers import assert_one_line_error, run_cli

    for body in ("not json", '[{"qsl_idx": 0}]', '[{"qsl_idx": 0, "data": "zz"}]'):
        (tmp_path / "log.json").write_text(body)
        code, lines = run_cli(accuracy, ["--mlperf-accuracy-file", str(tmp_path / "log.json")], capsys)
        assert_one_line_error(code, lines, 1, "log.json")
