"""The package list for setuptools; everything else is in pyproject.toml.

data/ (lessons, policy, label maps) installs as the package `attune_data`, so a wheel
install has it; pyproject.toml's `find` cannot map a folder to another package name.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["cmt", "cmt.*", "tutor", "tutor.*", "ui", "ui.*"])
      + ["attune_data"],
      package_dir={"attune_data": "data"})
