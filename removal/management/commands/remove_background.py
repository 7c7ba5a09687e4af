"""Batch background removal: `python manage.py remove_background INPUT... --out DIR`.

INPUT is an image file or a folder (searched recursively for images). Results keep the input's
relative path under DIR, with the extension of the output format. Files that fail are skipped
and listed at the end; the exit status is non-zero when any failed.
"""

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from removal import active_engine
from removal.api.pixian.options import parse_pixian_options
from removal.errors import RemovalError

IMAGE_SUFFIXES = {
    ".bmp",
    ".dib",
    ".gif",
    ".jpg",
    ".jpeg",
    ".jpe",
    ".png",
    ".tif",
    ".tiff",
    ".webp",
    ".heic",
    ".heif",
}
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg"}


def collect_inputs(paths: list[str]) -> list[tuple[Path, Path]]:
    """(file, output path relative to --out) for every input, folders expanded."""
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    found.append((file, file.relative_to(path)))
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise CommandError(f"no such file or folder: {raw}")
    return found


def parse_option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise CommandError(f"--option takes NAME=VALUE (a Pixian option), not {text!r}")
    return name.strip(), value


class Command(BaseCommand):
    help = "Remove the background of many images with the configured engine."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
        parser.add_argument("--out", required=True, help="folder for the results")
        parser.add_argument(
            "--format",
            choices=["auto", "png", "jpeg", "delta_png", "mask"],
            help="output.format (default auto: PNG, or JPEG with a background colour)",
        )
        parser.add_argument("--background-color", help="background.color, e.g. '#ffffff'")
        parser.add_argument("--max-pixels", help="max_pixels (100 to 25000000)")
        parser.add_argument("--jpeg-quality", help="output.jpeg_quality (1 to 100)")
        parser.add_argument("--crop", action="store_true", help="result.crop_to_foreground=true")
        parser.add_argument(
            "-o",
            "--option",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="any Pixian option, e.g. -o result.margin=5%% -o result.target_size='800 600'",
        )
        parser.add_argument(
            "--overwrite", action="store_true", help="replace results that already exist"
        )

    def options_from(self, opts: dict) -> dict[str, str]:
        fields = dict(parse_option(text) for text in opts["option"])
        shortcuts = {
            # `mask` is not a Pixian format: applied after parsing, in handle().
            "output.format": opts["format"] if opts["format"] != "mask" else None,
            "background.color": opts["background_color"],
            "max_pixels": opts["max_pixels"],
            "output.jpeg_quality": opts["jpeg_quality"],
            "result.crop_to_foreground": "true" if opts["crop"] else None,
        }
        for name, value in shortcuts.items():
            if value is not None:
                fields[name] = value
        return fields

    def handle(self, *args: str, **opts: Any) -> None:
        try:
            options = parse_pixian_options(self.options_from(opts))
        except RemovalError as exc:
            raise CommandError(exc.message) from None
        if opts["format"] == "mask":
            options = dataclasses.replace(options, output_format="mask")
        inputs = collect_inputs(opts["inputs"])
        if not inputs:
            raise CommandError("no images found in the given inputs")
        out_dir = Path(opts["out"])
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            remover = active_engine.get_remover()
        except active_engine.EngineUnavailableError as exc:
            raise CommandError(str(exc)) from None

        failures: list[tuple[Path, str]] = []
        written: set[Path] = set()
        skipped = 0
        started = time.perf_counter()
        progress = tqdm(inputs, unit="img", file=sys.stderr, disable=opts["verbosity"] == 0)
        for source, relative in progress:
            progress.set_postfix_str(source.name[-30:], refresh=False)
            try:
                result = remover.remove(source.read_bytes(), options)
            except RemovalError as exc:
                failures.append((source, f"{exc.code}: {exc.message}"))
                continue
            except OSError as exc:
                failures.append((source, f"cannot read: {exc}"))
                continue
            except Exception as exc:  # one bad file must not stop the batch
                failures.append((source, f"{type(exc).__name__}: {exc}"))
                continue
            target = self.target_for(out_dir, relative, result.content_type, written)
            if target.exists() and not opts["overwrite"]:
                skipped += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(result.body)
            written.add(target)
        progress.close()

        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"{len(written)} written, {skipped} already there, {len(failures)} failed "
            f"in {elapsed:.1f} s -> {out_dir}"
        )
        for source, reason in failures:
            self.stderr.write(f"FAILED {source}: {reason}")
        if failures:
            raise CommandError(f"{len(failures)} of {len(inputs)} images failed")

    @staticmethod
    def target_for(out_dir: Path, relative: Path, content_type: str, taken: set[Path]) -> Path:
        suffix = EXTENSIONS.get(content_type, ".png")
        target = out_dir / relative.with_suffix(suffix)
        n = 2
        while target in taken:
            target = out_dir / relative.with_name(f"{relative.stem}-{n}{suffix}")
            n += 1
        return target
