"""The MCP SDK (pydantic, starlette, ...) is loaded by ``kei mcp serve`` only: ``import
kei``, the CLI's command tree and every other command stay free of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
import kei
import kei.adapters.cli.app
from kei.adapters.cli.commands import mcp_cmd
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("mcp", "mcp_types", "pydantic"))
assert not loaded, loaded
"""


def test_import_kei_and_the_cli_load_no_mcp_module() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_without_the_sdk_serve_says_what_to_install(tmp_path: Path) -> None:
    blocked = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mcp':\n"
        "            raise ImportError(name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['kei', 'mcp', 'serve']\n"
        "import runpy\n"
        "runpy.run_module('kei', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                          timeout=120, check=False, env={"KEI_HOME": str(tmp_path), "PATH": ""})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'kei[mcp]'" in done.stderr and "Traceback" not in done.stderr
