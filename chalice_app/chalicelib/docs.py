"""The interactive API reference at `/docs`: Swagger UI over `/openapi.json`.

The assets come from the `swagger-ui-bundle-v2` package, never a CDN. The page carries them
inline as data: URLs, so `/docs` is one public route like `/openapi.json` (the gateway opens
exactly those two) and works offline. Data URLs rather than inline `<script>` text: the bundle
contains `<!--` and `<script`, which would change how an HTML parser finds the closing tag.

The Lambda bundle holds only the two files the page uses: `make package` runs
`python -m chalicelib.docs vendor` to copy them, with the package's `__init__`, into `vendor/`
(the package's other 10 MB are source maps and alternative builds).
"""

from __future__ import annotations

import base64
import shutil
import sys
from functools import lru_cache
from pathlib import Path

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}

# `openapi.json` is relative to /docs, so it also resolves under API Gateway's stage prefix.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>orderflow API reference</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{js}"></script>
<script>
window.ui = SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true}});
</script>
</body>
</html>
"""


def _asset_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def _data_url(name: str) -> str:
    encoded = base64.b64encode((_asset_dir() / name).read_bytes()).decode("ascii")
    return f"data:{ASSETS[name]};base64,{encoded}"


@lru_cache(maxsize=1)
def page() -> str:
    """The HTML page (about 2 MB; built once per process)."""
    return _PAGE.format(css=_data_url("swagger-ui.css"), js=_data_url("swagger-ui-bundle.js"))


def vendor(target: Path) -> None:
    """Copy the package's `__init__` and the page's assets into `target`, as installed."""
    import swagger_ui_bundle

    package = Path(str(swagger_ui_bundle.__file__)).parent
    assets = _asset_dir()
    destination = target / "swagger_ui_bundle" / assets.relative_to(package)
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy2(package / "__init__.py", target / "swagger_ui_bundle" / "__init__.py")
    for name in ASSETS:
        shutil.copy2(assets / name, destination / name)


if __name__ == "__main__":
    if sys.argv[1:2] != ["vendor"] or len(sys.argv) != 3:
        sys.exit("usage: python -m chalicelib.docs vendor TARGET_DIR")
    vendor(Path(sys.argv[2]))
