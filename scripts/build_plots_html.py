"""Build .dvc/plots/offline.html: DVC's plot page with Vega inlined, so plots render offline.

`dvc plots show` normally loads Vega, Vega-Lite and vega-embed from a CDN; this template
carries them inline (BSD-3-Clause, see .dvc/plots/VEGA-LICENSES.md), so the page draws on a
machine with no internet. Maintainers run this when bumping Vega (it fetches the packages
with `npm pack`); users never need to.

    python scripts/build_plots_html.py [--from DIR]   # DIR: already unpacked npm packages
"""

from __future__ import annotations

import argparse
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
FILES = {"vega": "build/vega.min.js", "vega-lite": "build/vega-lite.min.js", "vega-embed": "build/vega-embed.min.js"}
ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / ".dvc" / "plots" / "offline.html"

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>corpusprov plots</title>
    <!-- Vega {vega}, Vega-Lite {vega_lite}, vega-embed {vega_embed}, inlined (BSD-3-Clause). -->
{scripts}
    <style>
        body {{ font-family: sans-serif; margin: 16px; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def _unpack(folder: Path) -> dict[str, Path]:
    roots = {}
    for name, version in PACKAGES.items():
        subprocess.run(  # noqa: S603
            ["npm", "pack", f"{name}@{version}"],  # noqa: S607
            cwd=folder,
            check=True,
            capture_output=True,
        )
        with tarfile.open(folder / f"{name}-{version}.tgz") as archive:
            archive.extractall(folder / name, filter="data")
        roots[name] = folder / name / "package"
    return roots


def main() -> None:
    """Write the template."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="folder with unpacked packages named vega-X.Y.Z etc.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        if args.source:
            roots = {name: args.source / f"{name}-{version}" for name, version in PACKAGES.items()}
        else:
            roots = _unpack(Path(temp))
        scripts = []
        for name in PACKAGES:
            code = (roots[name] / FILES[name]).read_text(encoding="utf-8")
            if "</script" in code:
                raise SystemExit(f"{name} contains '</script': cannot inline it safely")
            scripts.append(f"    <script>/* {name} {PACKAGES[name]} */\n{code}\n    </script>")
    page = PAGE.format(
        scripts="\n".join(scripts),
        vega=PACKAGES["vega"],
        vega_lite=PACKAGES["vega-lite"],
        vega_embed=PACKAGES["vega-embed"],
    )
    TARGET.write_text(page, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(page) // 1024} KiB)")


if __name__ == "__main__":
    main()
