"""What every engine shares: rendering a `Cutout`, and `remove` as analyse-then-render."""

from . import render
from .types import Cutout, RemovalContext, RemovalOptions, RemovalResult


class Engine:
    """Base of the engines; a subclass implements `analyse` and may answer `remove` itself."""

    name = "engine"

    def analyse(
        self, data: bytes, options: RemovalOptions, context: RemovalContext | None = None
    ) -> Cutout:
        raise NotImplementedError

    def render(self, cutout: Cutout, options: RemovalOptions) -> RemovalResult:
        result = render.render(cutout, options)
        result.engine = self.name
        return result

    def remove(
        self, data: bytes, options: RemovalOptions, context: RemovalContext | None = None
    ) -> RemovalResult:
        return self.render(self.analyse(data, options, context), options)
