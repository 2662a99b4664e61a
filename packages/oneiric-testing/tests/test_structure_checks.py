"""The structure checker on real package trees written to disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneiric.testing import import_cycles, missing_exports, module_imports, oversized_modules


def _tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pkg"
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pkg


@pytest.mark.parametrize(
    "files",
    [
        {"__init__.py": "", "_a.py": "from ._b import x\n", "_b.py": "from ._a import y\n"},
        {"__init__.py": "", "_a.py": "from . import _b\n", "_b.py": "import pkg._a\n"},
        {"__init__.py": "", "_a.py": "try:\n    from ._b import x\nexcept ImportError:\n    pass\n",
         "_b.py": "if True:\n    from ._a import y\n"},
        {"__init__.py": "", "sub/__init__.py": "from .._a import x\n",
         "_a.py": "from .sub import y\n"},
    ],
    ids=["relative", "absolute-and-package", "inside-try-and-if", "subpackage"],
)
def test_import_cycle_is_found(tmp_path: Path, files: dict[str, str]) -> None:
    cycles = import_cycles(_tree(tmp_path, files), "pkg")
    assert cycles and cycles[0][0] == cycles[0][-1]


def test_type_checking_and_lazy_imports_are_not_edges(tmp_path: Path) -> None:
    pkg = _tree(tmp_path, {
        "__init__.py": "",
        "_a.py": "from ._b import x\n",
        "_b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._a import y\n"
                 "def f():\n    from ._a import z\n",
    })
    assert import_cycles(pkg, "pkg") == []
    assert module_imports(pkg, "pkg")["pkg._a"] == {"pkg._b"}


def test_oversized_module_needs_an_allow_listed_reason(tmp_path: Path) -> None:
    pkg = _tree(tmp_path, {"__init__.py": "", "_big.py": "x = 1\n" * 501, "_ok.py": "x = 1\n"})
    assert oversized_modules(pkg) == [("_big.py", 501)]
    assert oversized_modules(pkg, allowed={"_big.py": "one table of constants"}) == []
    with pytest.raises(ValueError, match="needs a reason"):
        oversized_modules(pkg, allowed={"_big.py": " "})


def test_missing_exports_names_the_module_and_the_name(tmp_path: Path, monkeypatch) -> None:
    _tree(tmp_path, {"__init__.py": "__all__ = ['here']\nhere = 1\n",
                     "_mod.py": "__all__ = ['gone', 'kept']\nkept = 2\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    import pkg

    assert missing_exports(pkg) == {"pkg._mod": ["gone"]}
