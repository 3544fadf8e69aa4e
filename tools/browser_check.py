"""Open every method notebook in JupyterLab, in a real (headless) Chromium, and run it as a reader would.

    python tools/browser_check.py                                  # every nbs/[0-9]*.ipynb; screenshots to results/browser
    python tools/browser_check.py nbs/14_propagation.ipynb --shots /tmp/shots

The check starts its own JupyterLab server on 127.0.0.1 (a random port and token, its settings and workspaces in a
temporary folder, so the user's own JupyterLab state is neither read nor changed) on a temporary copy of `nbs/`,
with the kernels of this environment first on JUPYTER_PATH as `tools/lab.sh` has them, and drives it with
Playwright through the system's Chromium. For each notebook it:

- opens it through the `/lab/tree/...` URL and waits for its kernel;
- fails when that kernel is not the project's: the kernel process must run this virtual environment's Python;
- clicks every code cell in turn and runs it with Shift+Enter, waiting for its prompt to show an execution count.
  The cells that nbdev's test runner skips are skipped: those tagged `#| slow` or `#| gpu` (the `tst_flags` of
  `settings.ini`), `#| eval: false`, and the closing `nbdev_export()` cell;
- saves the notebook from the user interface and fails on any error output in the saved file;
- screenshots the first figure that a cell drew in this run, as a palette PNG `<shots>/<notebook>.png`.

`<shots>/run-info.json` records the commit, the browser and JupyterLab versions, and each notebook's verdict.

Before the notebooks it runs a two-cell notebook whose second cell raises, and fails unless that error is caught:
the check proves on every run that it can fail. Chromium is installed with apt-get when it is missing (Debian's
`chromium` package; Playwright's own browser downloads need the network).
"""
import argparse
import configparser
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import jupyterlab
from PIL import Image

from corrmine.core import run_info, write_json

ROOT = Path(__file__).resolve().parents[1]


def ensure_chromium() -> str:
    "The path of a Chromium binary; installs Debian's package when none is found."
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name): return path
    print("[browser] chromium is missing; installing Debian's package with apt-get", flush=True)
    sudo = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else None)
    if sudo is None or not shutil.which("apt-get"):
        sys.exit("[browser] no chromium on PATH, and it cannot be installed here (needs apt-get as root or sudo); "
                 "install a Chromium and put it on PATH as 'chromium'")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        subprocess.run(sudo + cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    path = shutil.which("chromium")
    if not path: sys.exit("[browser] apt-get installed chromium, but no 'chromium' is on PATH")
    return path


def skipped(source: str, skip: set[str]) -> bool:
    "Whether nbdev's test runner skips this code cell: a flag of `skip`, `#| eval: false`, or a call to nbdev_export."
    if "nbdev_export(" in source: return True
    for line in source.splitlines():
        if not line.startswith("#|"): break
        words = line[2:].split()
        if set(words) & skip or words[:2] == ["eval:", "false"]: return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    "A JupyterLab server on localhost, isolated in a temporary folder; stopped on exit."

    def __init__(self, root: Path, home: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings = home / "settings"
        # every cell in the page (no virtual scrolling), no news or update pop-ups
        for ext, name, value in [("notebook-extension", "tracker", {"windowingMode": "none"}),
                                 ("apputils-extension", "notification", {"fetchNews": "false", "checkForUpdates": False})]:
            f = settings / "@jupyterlab" / ext / f"{name}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value))
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"),
                   JUPYTER_PATH=os.pathsep.join([str(Path(sys.prefix) / "share" / "jupyter")] + os.environ.get("JUPYTER_PATH", "").split(os.pathsep)).rstrip(os.pathsep))
        env.pop("MPLBACKEND", None)                              # the kernel draws inline, as for a reader
        self.log = open(home / "lab.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(120):
            if self.proc.poll() is not None: break
            try:
                self.api("GET", "status"); return
            except OSError: time.sleep(0.5)
        self.stop()
        sys.exit(f"[browser] JupyterLab did not start; its log is {home / 'lab.log'}:\n" + (home / "lab.log").read_text()[-3000:])

    def api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernel_argv0(self) -> str | None:
        """The interpreter of the one running kernel (the open notebook's: the check shuts every kernel down before it
        opens the next notebook), read from the kernel process's command line."""
        kernels = self.api("GET", "kernels")
        if len(kernels) != 1: return None
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try: argv = cmdline.read_bytes().split(b"\0")
            except OSError: continue
            if any(f"kernel-{kernels[0]['id']}.json".encode() in a for a in argv): return argv[0].decode()
        return None

    def shutdown_kernels(self):
        for k in self.api("GET", "kernels"): self.api("DELETE", f"kernels/{k['id']}")

    def stop(self):
        self.proc.terminate()
        try: self.proc.wait(20)
        except subprocess.TimeoutExpired: self.proc.kill()
        self.log.close()


def palette_png(png: bytes, out: Path):
    "Write a screenshot as a 256-colour PNG: a few tens of KB instead of hundreds."
    im = Image.open(io.BytesIO(png)).convert("RGB")
    tmp = out.with_name(out.name + ".tmp")
    im.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(tmp, format="PNG", optimize=True)
    os.replace(tmp, out)


def run_notebook(page, lab: Lab, rel: str, nb_file: Path, skip: set[str], cell_timeout: float, shot: Path | None) -> list[str]:
    "Run one notebook through the user interface; returns the problems found (empty when it passed)."
    cells = json.loads(nb_file.read_text())["cells"]
    page.goto(f"{lab.url}/lab/tree/{rel}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_function("""n => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').length === n""",
                           arg=len(cells), timeout=60_000)
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=120_000)
    problems = []
    argv0, venv_python = lab.kernel_argv0(), Path(sys.executable)
    if argv0 is None or (argv0 not in ("python", "python3") and Path(argv0).parent != venv_python.parent):
        problems.append(f"its kernel runs {argv0!r}, not this environment's Python ({venv_python})")
        return problems
    dom = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    ran = n_skipped = 0; run_cells = []
    for i, c in enumerate(cells):
        if c["cell_type"] != "code": continue
        src = "".join(c["source"])
        if not src.strip(): continue
        if skipped(src, skip): n_skipped += 1; continue
        cell = dom.nth(i)
        cell.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Shift+Enter")
        prompt = cell.locator(".jp-InputPrompt").first
        try:
            page.wait_for_function("""el => /^\\[\\d+\\]:$/.test(el.textContent.trim())""", arg=prompt.element_handle(),
                                   timeout=cell_timeout * 1000)
        except Exception:
            problems.append(f"cell {i} did not finish within {cell_timeout:.0f} s (prompt {prompt.text_content().strip()!r})")
            return problems
        ran += 1; run_cells.append(i)
    # save from the user interface, then read the saved file: the outputs the reader saw
    before = nb_file.stat().st_mtime_ns
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.time() + 30
    while nb_file.stat().st_mtime_ns == before and time.time() < deadline: time.sleep(0.2)
    if nb_file.stat().st_mtime_ns == before:
        problems.append("saving from the user interface did not write the notebook")
        return problems
    time.sleep(0.5)
    saved = json.loads(nb_file.read_text())["cells"]
    for i, c in enumerate(saved):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                problems.append(f"cell {i} raised {o.get('ename')}: {o.get('evalue', '')[:300]}")
    counts = [c.get("execution_count") for c in saved if c["cell_type"] == "code" and c.get("execution_count")]
    if len(counts) != ran:
        problems.append(f"{ran} cells were run, but the saved notebook has {len(counts)} execution counts")
    if shot is not None and not problems:
        imgs = [dom.nth(i).locator(".jp-OutputArea-output img") for i in run_cells]   # drawn by this run, not stored
        imgs = [im for im in imgs if im.count()]
        if imgs:
            el = imgs[0].first
            el.scroll_into_view_if_needed()
            ok = el.evaluate("e => e.complete && e.naturalWidth > 0")
            if not ok: problems.append("its first figure did not render in the browser")
            else: palette_png(el.screenshot(), shot)
    print(f"[browser] {rel}: {ran} cells run, {n_skipped} skipped"
          + (f", figure {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot}" if shot and shot.exists() else ""), flush=True)
    return problems


SELFTEST = {"cells": [
    {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["x = 1"]},
    {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["1 / (x - 1)"]}],
    "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every method notebook, nbs/[0-9]*.ipynb")
    p.add_argument("--shots", type=Path, default=ROOT / "results" / "browser", help="where the figures' screenshots go")
    p.add_argument("--flags", default="", help="nbdev flags to run anyway, e.g. 'slow'")
    p.add_argument("--cell-timeout", type=float, default=300)
    p.add_argument("--headed", action="store_true", help="show the browser (needs a display)")
    a = p.parse_args()
    nbs = [n.resolve() for n in a.notebooks] or sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
    cfg = configparser.ConfigParser(); cfg.read(ROOT / "settings.ini")
    skip = set(cfg["DEFAULT"].get("tst_flags", "").split()) - set(a.flags.split())

    chromium = ensure_chromium()
    from playwright.sync_api import sync_playwright
    a.shots.mkdir(parents=True, exist_ok=True)
    t0, failed = time.time(), {}
    with tempfile.TemporaryDirectory(prefix="corrmine-browser-") as tmp:
        tmp = Path(tmp)
        work = tmp / "repo"
        shutil.copytree(ROOT / "nbs", work / "nbs")              # the server works on a copy: saving cannot touch nbs/
        for d in ("data", "runs", "results"):                   # what the notebooks' relative paths point to
            if (ROOT / d).exists(): (work / d).symlink_to(ROOT / d)
        (work / "selftest.ipynb").write_text(json.dumps(SELFTEST))
        lab = Lab(work, tmp / "lab")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=not a.headed)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                version = f"{Path(chromium).name} {browser.version}"
                print(f"[browser] JupyterLab {jupyterlab.__version__} at {lab.url}, {version}", flush=True)
                probs = run_notebook(page, lab, "selftest.ipynb", work / "selftest.ipynb", skip, a.cell_timeout, None)
                lab.shutdown_kernels()
                if probs != ["cell 1 raised ZeroDivisionError: division by zero"]:
                    sys.exit(f"[browser] the self-test notebook's error was not caught as expected: {probs}")
                print("[browser] self-test: a raising cell is caught", flush=True)
                for nb in nbs:
                    rel = f"nbs/{nb.name}"
                    probs = run_notebook(page, lab, rel, work / rel, skip, a.cell_timeout, a.shots / f"{nb.stem}.png")
                    lab.shutdown_kernels()
                    if probs:
                        failed[nb.name] = probs
                        print(f"[browser] {rel}: FAILED\n  " + "\n  ".join(probs), flush=True)
                browser.close()
        finally:
            lab.stop()
    print(f"[browser] {len(nbs) - len(failed)} of {len(nbs)} notebooks passed in {time.time() - t0:.0f} s")
    write_json(a.shots / "run-info.json", dict(run_info("cpu"), what="screenshots of the method notebooks' first figures, "
               "drawn by JupyterLab in headless Chromium (tools/browser_check.py)", browser=version, jupyterlab=jupyterlab.__version__,
               notebooks={nb.name: "failed: " + "; ".join(failed[nb.name]) if nb.name in failed else "passed" for nb in nbs},
               seconds=round(time.time() - t0)))
    if failed: sys.exit(1)


if __name__ == "__main__":
    main()
