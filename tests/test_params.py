"""Every Pixian option (removal/api/pixian/options.py), its default, range and spellings, the
shared primitives every format's parser reuses (removal/params.py) and the image inputs
(removal/inputs.py). No database, no HTTP."""

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict

from removal import errors, inputs, params
from removal.api.pixian.options import parse_pixian_options
from removal.engine.types import Length, Margin, Rect, RemovalOptions
from removal.errors import ERRORS, RemovalError

# Any code: the primitives raise the one they are given.
CODE = errors.BAD_OPTION


def error_of(call, *args, **kwargs) -> RemovalError:
    with pytest.raises(RemovalError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- defaults and unknown fields ---------------------------------------------------------------


def test_no_options_gives_pixian_defaults():
    options = parse_pixian_options({})
    assert options == RemovalOptions()
    assert options.max_pixels == 25_000_000
    assert options.jpeg_quality == 75
    assert options.output_format == "auto"
    assert options.vertical_alignment == "middle"
    assert options.margin == Margin()
    assert options.test is False and options.crop_to_foreground is False


def test_unknown_fields_are_ignored():
    options = parse_pixian_options({"colour": "red", "foo.bar": "!", "image.url": "x"})
    assert options == RemovalOptions()


def test_empty_values_count_as_not_given():
    fields = {name: "  " for name in ("test", "max_pixels", "result.margin", "output.format")}
    assert parse_pixian_options(fields) == RemovalOptions()


def test_every_option_parses_into_engine_options():
    options = parse_pixian_options(
        {
            "test": "true",
            "max_pixels": "1000000",
            "background.color": "#0055FF",
            "result.crop_to_foreground": "1",
            "result.margin": "10px 20% 5px 15%",
            "result.target_size": "1920 1080",
            "result.vertical_alignment": "bottom",
            "output.format": "jpeg",
            "output.jpeg_quality": "90",
        }
    )
    assert options == RemovalOptions(
        test=True,
        max_pixels=1_000_000,
        background_color=(0x00, 0x55, 0xFF),
        crop_to_foreground=True,
        margin=Margin(Length(10, "px"), Length(20, "%"), Length(5, "px"), Length(15, "%")),
        target_size=(1920, 1080),
        vertical_alignment="bottom",
        output_format="jpeg",
        jpeg_quality=90,
    )


# --- booleans ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("true", True), ("TRUE", True), ("True", True), ("tRuE", True), ("1", True)]
    + [("false", False), ("FALSE", False), ("False", False), ("0", False), (" true ", True)],
)
def test_booleans_accept_true_false_in_any_case_and_1_0(text, expected):
    assert parse_pixian_options({"test": text}).test is expected
    assert parse_pixian_options({"result.crop_to_foreground": text}).crop_to_foreground is (
        expected
    )


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "2", "-1", "t", "truee", "01"])
def test_other_boolean_spellings_are_refused_with_the_options_code(text):
    error = error_of(parse_pixian_options, {"test": text})
    assert (error.code, error.status) == (2001, 400)
    assert "test" in error.message and "true or false" in error.message
    error = error_of(parse_pixian_options, {"result.crop_to_foreground": text})
    assert error.code == 2004
    assert "result.crop_to_foreground" in error.message


def test_json_booleans_are_accepted_by_the_primitive():
    assert params.parse_bool(True, "crop", CODE) is True
    assert params.parse_bool(0, "crop", CODE) is False
    assert error_of(params.parse_bool, 2, "crop", CODE).code == CODE
    assert error_of(params.parse_bool, None, "crop", CODE).code == CODE


# --- integers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("100", 100), ("25000000", 25_000_000), ("0640", 640)])
def test_max_pixels_range_ends_are_accepted(text, value):
    assert parse_pixian_options({"max_pixels": text}).max_pixels == value


@pytest.mark.parametrize(
    "text", ["99", "25000001", "0", "-5", "+100", "1e6", "1_000", "10.0", "abc", "1 000"]
)
def test_max_pixels_out_of_range_or_not_an_integer_is_2002(text):
    error = error_of(parse_pixian_options, {"max_pixels": text})
    assert error.code == 2002
    assert "max_pixels" in error.message and "100 to 25,000,000" in error.message


@pytest.mark.parametrize("text, value", [("1", 1), ("100", 100), ("75", 75)])
def test_jpeg_quality_range(text, value):
    assert parse_pixian_options({"output.jpeg_quality": text}).jpeg_quality == value


@pytest.mark.parametrize("text", ["0", "101", "high", "50%", "7.5"])
def test_bad_jpeg_quality_is_2009(text):
    error = error_of(parse_pixian_options, {"output.jpeg_quality": text})
    assert error.code == 2009
    assert "output.jpeg_quality" in error.message and "1 to 100" in error.message


def test_int_primitive_takes_json_numbers_but_not_booleans():
    assert params.parse_int(42, "n", CODE, 1, 100) == 42
    assert error_of(params.parse_int, True, "n", CODE, 0, 100).code == CODE
    assert error_of(params.parse_int, 4.5, "n", CODE, 0, 100).code == CODE


# --- colour ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rgb",
    [("#0055FF", (0, 0x55, 0xFF)), ("#ffffff", (255, 255, 255)), ("#aBc123", (171, 193, 35))],
)
def test_background_color_is_hash_rrggbb(text, rgb):
    assert parse_pixian_options({"background.color": text}).background_color == rgb


@pytest.mark.parametrize("text", ["0055FF", "#05F", "#0055FF00", "red", "#GG0000", "rgb(0,0,0)"])
def test_bad_background_color_is_2003_and_says_the_hash_is_required(text):
    error = error_of(parse_pixian_options, {"background.color": text})
    assert error.code == 2003
    assert "background.color" in error.message and "#RRGGBB" in error.message
    assert "# is required" in error.message


def test_color_primitive_serves_removebg_forms():
    rules = {"require_hash": False, "digits": (3, 4, 6, 8), "names": True}
    assert params.parse_color("fff", "bg_color", CODE, **rules) == (255, 255, 255, 255)
    assert params.parse_color("#f008", "bg_color", CODE, **rules) == (255, 0, 0, 0x88)
    assert params.parse_color("81d4fa", "bg_color", CODE, **rules) == (0x81, 0xD4, 0xFA, 255)
    assert params.parse_color("00000080", "bg_color", CODE, **rules) == (0, 0, 0, 128)
    assert params.parse_color("Green", "bg_color", CODE, **rules) == (0, 128, 0, 255)
    error = error_of(params.parse_color, "ff", "bg_color", CODE, **rules)
    assert error.code == CODE and "CSS colour name" in error.message


# --- margin ------------------------------------------------------------------------------------


def px(value):
    return Length(value, "px")


def pc(value):
    return Length(value, "%")


@pytest.mark.parametrize(
    "text, margin",
    [
        ("0px", Margin()),
        ("0", Margin()),
        ("10px", Margin(px(10), px(10), px(10), px(10))),
        ("10px 5%", Margin(px(10), pc(5), px(10), pc(5))),
        ("1px 2px 3px", Margin(px(1), px(2), px(3), px(2))),
        ("1px 2px 3px 4px", Margin(px(1), px(2), px(3), px(4))),
        ("2.5% .5px 3.px 100%", Margin(pc(2.5), px(0.5), px(3), pc(100))),
        ("  10PX   20%  ", Margin(px(10), pc(20), px(10), pc(20))),
    ],
)
def test_margin_follows_css_order(text, margin):
    assert parse_pixian_options({"result.margin": text}).margin == margin


@pytest.mark.parametrize(
    "text",
    ["10", "10px 10px 10px 10px 10px", "-5px", "10em", "px", "10 px", "101%", "10001px", "1,2"],
)
def test_bad_margin_is_2005_naming_the_form(text):
    error = error_of(parse_pixian_options, {"result.margin": text})
    assert error.code == 2005
    assert "result.margin" in error.message and "10px or 5.5%" in error.message


def test_margin_that_leaves_no_room_in_the_target_size_is_2005():
    fields = {"result.target_size": "100 100", "result.margin": "50px 0px"}
    error = error_of(parse_pixian_options, fields)
    assert error.code == 2005 and "result.target_size" in error.message
    fields["result.margin"] = "30px 50%"
    assert error_of(parse_pixian_options, fields).code == 2005
    fields["result.margin"] = "49px 0px"
    assert parse_pixian_options(fields).margin.top == px(49)


def test_length_primitive_serves_removebg_crop_margin():
    lengths = params.parse_lengths(
        "30", "crop_margin", CODE, counts=(1, 2, 4), max_px=500, max_percent=50, unitless="px"
    )
    assert lengths == [px(30)]
    error = error_of(
        params.parse_lengths, "1px 2px 3px", "crop_margin", CODE, counts=(1, 2, 4), max_px=500
    )
    assert error.code == CODE and "1, 2 or 4" in error.message
    assert error_of(params.parse_lengths, "51%", "crop_margin", CODE, max_percent=50).code == CODE


# --- target size, alignment, format -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, size",
    [
        ("1920 1080", (1920, 1080)),
        ("1 1", (1, 1)),
        (" 5000  5000 ", (5000, 5000)),
        ("100000 100", (100000, 100)),  # exactly 1000:1
    ],
)
def test_target_size(text, size):
    assert parse_pixian_options({"result.target_size": text}).target_size == size


@pytest.mark.parametrize(
    "text",
    [
        "1920",
        "1920x1080",
        "0 100",
        "100 -1",
        "10.5 20",
        "a b",
        "1 2 3",
        "5001 5000",
        "25000000 1",  # within the pixel cap, but a line: the watermark's loops grow with it
        "1 25000000",
        "100001 100",
    ],
)
def test_bad_target_size_is_2006(text):
    error = error_of(parse_pixian_options, {"result.target_size": text})
    assert error.code == 2006
    assert "result.target_size" in error.message and "1920 1080" in error.message


@pytest.mark.parametrize("text", ["top", "middle", "bottom", "TOP"])
def test_vertical_alignment(text):
    options = parse_pixian_options({"result.vertical_alignment": text})
    assert options.vertical_alignment == text.lower()


@pytest.mark.parametrize("text", ["center", "left", "1"])
def test_bad_vertical_alignment_is_2007(text):
    error = error_of(parse_pixian_options, {"result.vertical_alignment": text})
    assert error.code == 2007
    assert "result.vertical_alignment" in error.message and "top, middle, bottom" in error.message


@pytest.mark.parametrize("text", ["auto", "png", "jpeg", "delta_png", "PNG"])
def test_output_format(text):
    assert parse_pixian_options({"output.format": text}).output_format == text.lower()


@pytest.mark.parametrize("text", ["jpg", "webp", "mask", "delta-png", "gif"])
def test_bad_output_format_is_2008(text):
    error = error_of(parse_pixian_options, {"output.format": text})
    assert error.code == 2008
    assert "output.format" in error.message and "delta_png" in error.message


def test_every_pixian_option_has_its_own_code_in_the_error_table():
    codes = [
        errors.BAD_TEST,
        errors.BAD_MAX_PIXELS,
        errors.BAD_BACKGROUND_COLOR,
        errors.BAD_CROP_TO_FOREGROUND,
        errors.BAD_MARGIN,
        errors.BAD_TARGET_SIZE,
        errors.BAD_VERTICAL_ALIGNMENT,
        errors.BAD_OUTPUT_FORMAT,
        errors.BAD_JPEG_QUALITY,
    ]
    assert len(set(codes)) == len(codes)
    assert all(2001 <= code <= 2099 and ERRORS[code].status == 400 for code in codes)


def test_long_bad_values_are_shortened_in_the_message():
    error = error_of(parse_pixian_options, {"output.format": "x" * 5000})
    assert len(error.message) < 200


# --- box lists (Baidu position) ---------------------------------------------------------------


def boxes(text: str, max_count: int = 10) -> tuple[Rect, ...]:
    return params.parse_box_list(text, "position", CODE, max_count=max_count)


def test_box_list_from_json_text_or_list():
    found = boxes("[[[10, 20], [110, 220]], [[0, 0], [10.5, 10]]]")
    assert found == (Rect(10, 20, 110, 220), Rect(0, 0, 10.5, 10))
    assert boxes([[[1, 2], [11, 12]]]) == (Rect(1, 2, 11, 12),)


def test_box_list_of_exactly_the_maximum_count_is_accepted():
    assert len(boxes([[[i, 0], [i + 10, 10]] for i in range(10)], max_count=10)) == 10


def test_box_list_over_the_maximum_count_is_refused_before_any_box_is_read():
    # A million boxes, each of which would run the model once: refused from the count, and
    # the message says what the limit is.
    many = [[[0, 0], [10, 10]]] * 1_000_000
    error = error_of(params.parse_box_list, many, "position", CODE, max_count=10)
    assert error.code == CODE and "1 to 10 boxes" in error.message
    assert error_of(params.parse_box_list, many[:3], "position", CODE, max_count=2).code == CODE


def test_box_list_max_count_is_the_setting(settings):
    settings.CUTOUT_MAX_REGIONS = 3
    many = [[[0, 0], [10, 10]]] * 4
    assert len(boxes(many[:3], max_count=settings.CUTOUT_MAX_REGIONS)) == 3
    with pytest.raises(RemovalError):
        boxes(many, max_count=settings.CUTOUT_MAX_REGIONS)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "[]",
        "[[[10, 20], [5, 220]]]",
        "[[[1, 1], [1, 5]]]",
        "[[1, 2, 3, 4]]",
        "nonsense",
        "[[[-1, 0], [5, 5]]]",
        '[[["1", 0], [5, 5]]]',
        "[[[true, 0], [5, 5]]]",
        "[[[0, 0], [9, 100]]]",  # under 10 px wide
        "[[[0, 0], [100, 9.5]]]",  # under 10 px high
        "[[[0, 0], [100, 100]], [[0, 0], [5, 5]]]",
    ],
)
def test_bad_box_lists_are_refused(value):
    error = error_of(params.parse_box_list, value, "position", CODE, max_count=10)
    assert error.code == CODE and "position" in error.message


# --- image inputs ------------------------------------------------------------------------------


PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def upload(data: bytes = PNG_1PX, name: str = "photo.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_file_input():
    found = inputs.select_input({}, MultiValueDict({"image": [upload()]}))
    assert (found.kind, found.data, found.filename) == ("file", PNG_1PX, "photo.png")


def test_no_input_is_1001():
    assert error_of(inputs.select_input, {"test": "true"}, MultiValueDict()).code == 1001


@pytest.mark.parametrize(
    "fields, files",
    [
        ({"image.url": "http://example.com/a.png"}, {"image": [upload()]}),
        ({"image.base64": "aGk="}, {"image": [upload()]}),
        ({"image.base64": "aGk=", "image.url": "http://example.com/a.png"}, {}),
        ({}, {"image": [upload(), upload()]}),
    ],
)
def test_two_inputs_are_1002(fields, files):
    assert error_of(inputs.select_input, fields, MultiValueDict(files)).code == 1002


def test_empty_file_is_1005():
    error = error_of(inputs.select_input, {}, MultiValueDict({"image": [upload(b"")]}))
    assert (error.code, error.status) == (1005, 400)


def test_base64_input_plain_and_with_data_prefix():
    text = base64.b64encode(PNG_1PX).decode()
    assert inputs.select_input({"image.base64": text}, {}).data == PNG_1PX
    found = inputs.select_input({"image.base64": "data:image/png;base64," + text}, {})
    assert (found.kind, found.data) == ("base64", PNG_1PX)


def test_base64_tolerates_line_breaks_missing_padding_and_urlsafe_alphabet():
    text = base64.b64encode(PNG_1PX).decode()
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert inputs.decode_base64(wrapped, "image.base64") == PNG_1PX
    assert inputs.decode_base64(text.rstrip("="), "image.base64") == PNG_1PX
    raw = bytes(range(256))
    assert inputs.decode_base64(base64.urlsafe_b64encode(raw).decode(), "x") == raw


@pytest.mark.parametrize("text", ["not base64!!", "aGk=aGk=$", "====", "a"])
def test_bad_base64_is_1003(text):
    error = error_of(inputs.select_input, {"image.base64": text}, {})
    assert (error.code, error.status) == (1003, 400)
    assert "image.base64" in error.message


def test_base64_over_1_mb_is_1003_before_decoding():
    text = "A" * (1024 * 1024 + 4)
    error = error_of(inputs.select_input, {"image.base64": text}, {})
    assert error.code == 1003 and "1,048,576" in error.message
    exactly = "A" * (1024 * 1024)
    assert len(inputs.select_input({"image.base64": exactly}, {}).data) == 786432


def test_empty_base64_is_an_empty_image():
    assert error_of(inputs.select_input, {"image.base64": ""}, {}).code == 1005


def test_url_input_is_returned_for_fetching():
    found = inputs.select_input({"image.url": " https://example.com/a.jpeg "}, {})
    assert (found.kind, found.url, found.data) == ("url", "https://example.com/a.jpeg", b"")


def test_input_names_are_per_wire_format():
    names = inputs.InputFields("image_file", "image_file_b64", "image_url", None)
    text = base64.b64encode(PNG_1PX).decode()
    assert inputs.select_input({"image_file_b64": text}, {}, names).data == PNG_1PX
    error = error_of(inputs.select_input, {"image": text}, {}, names)
    assert error.code == 1001 and "image_file_b64" in error.message


BAIDU_LIKE = inputs.InputFields(
    file=None, base64="image", url="url", base64_max_chars=None, selection="first_wins"
)


def test_first_wins_takes_the_first_input_in_field_order():
    both = {"image": base64.b64encode(PNG_1PX).decode(), "url": "http://example.com/a.png"}
    found = inputs.select_input(both, MultiValueDict(), BAIDU_LIKE)
    assert (found.kind, found.data) == ("base64", PNG_1PX)
    only_url = inputs.select_input({"url": " http://example.com/a.png "}, {}, BAIDU_LIKE)
    assert (only_url.kind, only_url.url) == ("url", "http://example.com/a.png")


def test_first_wins_still_needs_one_input_and_names_its_own_fields():
    error = error_of(inputs.select_input, {"image_type": "BASE64"}, {}, BAIDU_LIKE)
    assert error.code == 1001 and "image or url" in error.message


def test_first_wins_ignores_files_when_the_format_has_no_file_input():
    files = MultiValueDict({"image": [upload()]})
    assert error_of(inputs.select_input, {}, files, BAIDU_LIKE).code == 1001


def test_exactly_one_refuses_two_inputs_whatever_their_order():
    both = {"image.url": "http://example.com/a.png", "image.base64": "aGk="}
    assert error_of(inputs.select_input, both, {}).code == 1002
