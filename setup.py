"""Packaging for corrmine, driven by `settings.ini` (the nbdev 2 convention).

nbdev's template imports `pkg_resources`, which current setuptools no longer ships; this
version reads the same keys without it.
"""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read(Path(__file__).parent / "settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

for key in "version description keywords author author_email license min_python lib_name user".split():
    assert key in cfg, f"settings.ini is missing the key {key!r}"

licenses = {"apache2": "Apache-2.0", "mit": "MIT"}  # SPDX expressions
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable",
            "6 - Mature", "7 - Inactive"]
py_versions = "3.10 3.11 3.12 3.13".split()

min_python = cfg["min_python"]
requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
video_requirements = cfg.get("video_requirements", "").split()
console_scripts = cfg.get("console_scripts", "").split()  # whitespace-separated, as nbdev writes them

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    license=licenses.get(cfg["license"].lower(), cfg["license"]),
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"]) - 1],
        "Intended Audience :: " + cfg["audience"].title(),
        "Natural Language :: " + cfg["language"].title(),
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ]
    + ["Programming Language :: Python :: " + v for v in py_versions[py_versions.index(min_python):]],
    url=cfg["git_url"],
    packages=setuptools.find_packages(include=[cfg["lib_name"], cfg["lib_name"] + ".*"]),
    include_package_data=True,
    install_requires=requirements,
    extras_require={"dev": dev_requirements, "video": video_requirements},
    python_requires=">=" + min_python,
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    zip_safe=False,
    entry_points={"console_scripts": console_scripts, "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    author=cfg["author"],
    author_email=cfg["author_email"],
    description=cfg["description"],
    keywords=cfg["keywords"],
)
