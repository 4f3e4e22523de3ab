"""Third-party models join through the `gmdbench.models` entry point group."""

import os
import subprocess
import sys
import textwrap

from gmdbench.models.registry import model_config, registered_models

PLUGIN = textwrap.dedent('''
    from typing import Literal

    from gmdbench.models.fairchem_models import SchNetConfig, build_schnet
    from gmdbench.models.registry import ModelSpec


    class TinySchNetConfig(SchNetConfig):
        name: Literal["tinyschnet"] = "tinyschnet"
        hidden_channels: int = 8


    def build(config, elements, statistics):
        return build_schnet(SchNetConfig(**config.model_dump(exclude={"name"})), elements,
                            statistics)


    SPEC = ModelSpec("tinyschnet", TinySchNetConfig, build, "fairchem-core",
                     "a plugin model registered by entry point (test)")
''')


def _install_plugin(site):
    (site / "tiny_plugin.py").write_text(PLUGIN)
    info = site / "tiny_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gmdbench.models]\ntinyschnet = tiny_plugin:SPEC\n")


def test_entry_point_models_are_registered_and_listed(tmp_path, monkeypatch):
    _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "tinyschnet" in registered_models()
    assert model_config("tinyschnet").hidden_channels == 8
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path),
                                                         os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run([sys.executable, "-m", "gmdbench.cli", "models", "list"],
                            capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "tinyschnet" in listed.stdout
