"""`nanogfl predict` on a folder, a glob and a video; JSON lines, saved results, bad input."""
import shutil

import cv2
import pytest
from helpers import read_json_lines

from nanogfl.cli import main
from nanogfl.image_io import DataWarning


@pytest.fixture
def image_folder(tmp_path, coco_images):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in coco_images[:2]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_folder_json_and_save(official_model, image_folder, tmp_path, capsys):
    out_dir = tmp_path / "out"
    with pytest.warns(DataWarning, match="broken.jpg"):  # skipped with a warning, not a crash
        status = main(["predict", "--model", str(official_model), "--source", str(image_folder), "--json",
                       "--save", str(out_dir), "--threads", "1", "--score", "0.4"])
    captured = capsys.readouterr()
    assert status == 0
    records = read_json_lines(captured.out)
    assert [r["source"].rsplit("/", 1)[1] for r in records] == sorted(p.name for p in image_folder.glob("0*.jpg"))
    for record in records:
        original = cv2.imread(record["source"])
        assert (record["height"], record["width"]) == original.shape[:2]
        assert record["frame"] is None and record["detections"]
        assert all(d["score"] >= 0.4 and d["label"] for d in record["detections"])
        saved = cv2.imread(str(out_dir / record["source"].rsplit("/", 1)[1]))
        assert saved.shape == original.shape and (saved != original).any()  # boxes were drawn
    assert not (out_dir / "broken.jpg").exists()


def test_glob_human_output(official_model, image_folder, capsys):
    status = main(["predict", "--model", str(official_model), "--source", str(image_folder / "0*.jpg"),
                   "--threads", "1", "--size", "320"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0 and len(lines) == 2 and all(" objects (" in line for line in lines)


def test_video_every_frame(official_model, shared_data, tmp_path, capsys):
    video = shared_data / "video" / "carphone_pristine.mp4"
    status = main(["predict", "--model", str(official_model), "--source", str(video), "--json", "--save",
                   str(tmp_path), "--threads", "1", "--size", "160"])
    records = read_json_lines(capsys.readouterr().out)
    assert status == 0
    assert [r["frame"] for r in records] == list(range(120))
    saved = cv2.VideoCapture(str(tmp_path / "carphone_pristine.mp4"))
    count = 0
    while saved.read()[0]:
        count += 1
    assert count == 120


@pytest.mark.parametrize("source,message", [("0", "use `nanogfl demo"), ("/no/such/file.jpg", "source not found"),
                                            ("/no/such/*.jpg", "matches no images")])
def test_bad_sources(official_model, source, message, capsys):
    assert main(["predict", "--model", str(official_model), "--source", source]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_folder_with_only_broken_images(official_model, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(b"broken")
    with pytest.warns(DataWarning):
            assert main(["predict", "--model", str(official_model), "--source", str(tmp_path), "--threads", "1"]) == 2
    assert "no readable image" in capsys.readouterr().err
