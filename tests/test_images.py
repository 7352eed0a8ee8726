"""Edge cases of image files, on files the tests make: headers (the index), decoding (the cache), integrity
(cxr verify)."""

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageFile

from cxr_course.verify import find_integrity_problem
from cxr_utils.cache import ImageReadError, load_grayscale
from cxr_utils.dataset import _inspect, file_sha256

from helpers import jpeg_bytes, write_file


def read_header(path):
    """What the index reads of one file: its header's columns, or ImageReadError with its problem."""
    row = _inspect(path, headers=True, sha256=False)
    if row["problem"]:
        raise ImageReadError(f"{path}: {row['problem']}")
    return SimpleNamespace(**row)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def no_decoding(monkeypatch):
    """Make any pixel decoding fail, to prove a function reads headers only."""

    def refuse(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_header_of_grayscale_and_rgb_jpeg(tmp_path, no_decoding):
    gray = write_file(tmp_path / "gray.jpeg", jpeg_bytes(40, 30, "L"))
    rgb = write_file(tmp_path / "rgb.jpeg", jpeg_bytes(50, 20, "RGB"))
    gray_header, rgb_header = read_header(gray), read_header(rgb)
    assert (gray_header.width, gray_header.height, gray_header.mode, gray_header.format) == (40, 30, "L", "JPEG")
    assert (rgb_header.width, rgb_header.height, rgb_header.mode, rgb_header.exif_orientation) == (50, 20, "RGB", 1)


def test_cmyk_jpeg_header_and_gray_pixels(tmp_path):
    path = write_file(tmp_path / "cmyk.jpeg", jpeg_bytes(32, 16, "CMYK"))
    assert read_header(path).mode == "CMYK"
    pixels = load_grayscale(path)
    assert pixels.shape == (16, 32) and pixels.dtype == np.uint8
    # the gradient survives the CMYK round trip: dark on the left, bright on the right
    assert pixels[:, :4].mean() < 40 and pixels[:, -4:].mean() > 200


def test_16_bit_png_renamed_jpeg(tmp_path):
    values = np.array([[0, 256, 65535], [32768, 1000, 65280]], dtype=np.uint16)
    image = Image.fromarray(values)
    path = write_file(tmp_path / "deep.jpeg", png_bytes(image))
    header = read_header(path)
    assert header.format == "PNG" and header.mode.startswith("I")
    assert find_integrity_problem(path, header.format) is None
    np.testing.assert_array_equal(load_grayscale(path), [[0, 1, 255], [128, 3, 255]])


def test_palette_png_renamed_jpeg(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), "P")
    image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    path = write_file(tmp_path / "palette.jpeg", png_bytes(image))
    assert (read_header(path).format, read_header(path).mode) == ("PNG", "P")
    np.testing.assert_array_equal(load_grayscale(path), [[0, 255], [255, 0]])


def test_exif_rotated_image_is_reported_and_loaded_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = write_file(tmp_path / "rotated.jpeg", jpeg_bytes(40, 30, "L", exif=exif.tobytes()))
    header = read_header(path)
    assert (header.width, header.height, header.exif_orientation) == (40, 30, 6)
    assert load_grayscale(path).shape == (40, 30)


def test_rgb_with_equal_channels_loads_like_gray(tmp_path):
    gray = np.linspace(0, 255, 64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB").save(tmp_path / "c.png")
    np.testing.assert_array_equal(load_grayscale(tmp_path / "g.png"), load_grayscale(tmp_path / "c.png"))


def test_zero_byte_file(tmp_path):
    path = write_file(tmp_path / "empty.jpeg", b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_header(path)
    with pytest.raises(ImageReadError, match="empty file"):
        load_grayscale(path)


def test_not_an_image(tmp_path):
    path = write_file(tmp_path / "notes.jpeg", b"these are not pixels")
    with pytest.raises(ImageReadError, match="not an image"):
        read_header(path)


def test_truncated_jpeg_is_found_without_decoding(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise, "L").save(buffer, format="JPEG")
    data = buffer.getvalue()
    path = write_file(tmp_path / "cut.jpeg", data[: len(data) // 2])
    header = read_header(path)  # the header is intact
    assert find_integrity_problem(path, header.format).startswith("truncated")
    with pytest.raises(ImageReadError, match="cannot decode"):
        load_grayscale(path)


def test_complete_files_pass_integrity_check(tmp_path):
    jpeg = write_file(tmp_path / "ok.jpeg", jpeg_bytes() + b"\x00\x00")  # zero padding is allowed
    png = write_file(tmp_path / "ok.png", png_bytes(Image.new("L", (4, 4))))
    assert find_integrity_problem(jpeg, "JPEG") is None
    assert find_integrity_problem(png, "PNG") is None
    assert find_integrity_problem(write_file(tmp_path / "cut.png", png_bytes(Image.new("L", (4, 4)))[:-5]), "PNG")


def test_sha256_matches_known_digest(tmp_path):
    path = write_file(tmp_path / "abc", b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_reduced_scale_decoding_keeps_min_side_and_matches_full_decode(originals):
    """Draft-mode decoding of real full-resolution X-rays (gray and RGB files) stays
    at least min_side on both sides and, once resized, within a grey level of the
    full decode on average."""
    from cxr_utils.cache import resize_image

    paths = sorted((originals / "train" / "NORMAL").glob("*.jpeg"))[:4]
    paths += sorted((originals / "train" / "PNEUMONIA").glob("*.jpeg"))[:4]
    paths.append(
        next(p for p in sorted((originals / "train" / "PNEUMONIA").glob("*.jpeg")) if Image.open(p).mode == "RGB")
    )
    for path in paths:
        full = load_grayscale(path)
        reduced = load_grayscale(path, min_side=128)
        assert min(reduced.shape) >= 128
        assert reduced.shape[0] < full.shape[0]  # originals are large enough to shrink at least by 2
        difference = np.abs(resize_image(reduced, 128).astype(int) - resize_image(full, 128)).mean()
        assert difference < 2.0, path.name


def test_min_side_leaves_small_and_non_jpeg_images_full_size(tmp_path):
    small = write_file(tmp_path / "small.jpeg", jpeg_bytes(40, 30))
    assert load_grayscale(small, min_side=16).shape == (30, 40)  # 40 // 16 = 2 but 30 // 16 = 1
    png = tmp_path / "big.png"
    Image.new("L", (300, 200), 7).save(png)
    assert load_grayscale(png, min_side=50).shape == (200, 300)
