"""The cleaning-only distribution (``data_cleaning/package``, toolkit-cleaning): what it ships is this checkout's
cleaning code, its version is toolkit's, and nothing it ships imports torch, transformers or datasets."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "data_cleaning" / "package"


def test_the_modules_are_the_checkout_s():
    shipped = sorted(p.name for p in (PACKAGE / "toolkit").iterdir() if p.suffix == ".py")
    assert shipped == ["__init__.py", "cleaning.py", "cleaning_chartable.py", "cleaning_cli.py", "cli.py"]
    for name in shipped[1:]:
        assert (PACKAGE / "toolkit" / name).resolve() == (ROOT / "toolkit" / name).resolve(), name
    for path in ("setup.py", "toolkit/_cleaning_scan.c"):  # the compiled steps 1-2, built the same way
        assert (PACKAGE / path).resolve() == (ROOT / path).resolve(), path


def test_version_dependencies_and_script_match_toolkit():
    main, dist = configparser.ConfigParser(), configparser.ConfigParser()
    main.read(ROOT / "setup.cfg", encoding="utf-8")
    dist.read(PACKAGE / "setup.cfg", encoding="utf-8")
    assert dist["metadata"]["version"] == main["metadata"]["version"]
    assert f'__version__ = "{main["metadata"]["version"]}"' in (PACKAGE / "toolkit" / "__init__.py").read_text()
    needs = dist["options"]["install_requires"].split()
    assert needs == [r for r in main["options"]["install_requires"].split() if r.startswith(("opencc", "emoji"))]
    script = [s for s in main["options.entry_points"]["console_scripts"].splitlines() if "clean-weibo" in s]
    assert dist["options.entry_points"]["console_scripts"].strip() == script[0].strip()


def test_shipped_modules_import_nothing_heavy():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import toolkit, toolkit.cleaning, toolkit.cleaning_cli; "
            "assert toolkit.__file__.startswith(sys.argv[1]), toolkit.__file__; "
            "print([m for m in ('torch', 'transformers', 'datasets', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, str(PACKAGE)], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]", out
