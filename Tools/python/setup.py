"""Ships ``casket_exca.pth`` (the ``CASKET_EXCA=1`` switch, docs/EXCA.md) beside the package in site-packages.

setuptools has no option for a file at the root of site-packages, and ``data_files`` land under the prefix,
not site-packages. ``build_py`` copies the file into the build folder, the root of every wheel; for an
editable install (``pip install -e``), whose wheel is made from another folder, the hook writes it into
that wheel's root, the folder ``install_lib`` names.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = Path(__file__).resolve().parent / "casket_exca.pth"


class build_py_with_pth(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            target = Path(self.get_finalized_command("install").install_lib)
        else:
            target = Path(self.build_lib)
        target.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(PTH), str(target / PTH.name))

    def get_outputs(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return [*super().get_outputs(*args, **kwargs), str(Path(self.build_lib) / PTH.name)]


setup(cmdclass={"build_py": build_py_with_pth})
