"""setup.py: only to record where the package was installed from.

pyproject.toml holds the metadata; this build_py step writes clens/_origin.py
with the source repository's path, so that an installed package can find
<repo>/build/libclens.so (or build it with `make -C <repo>`). Nothing is
compiled: the binding loads libclens.so with ctypes (rulings R18).
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithOrigin(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        repo = os.path.dirname(here)
        target = os.path.join(self.build_lib, "clens", "_origin.py")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write("# written by setup.py at install time\n")
            f.write("REPO = %r\n" % (repo if os.path.exists(os.path.join(repo, "Makefile")) else None))


setup(cmdclass={"build_py": BuildPyWithOrigin}, package_data={"clens": ["libclens.so*"]})
